//! Lambda entrypoint (SQS consumer of the webhook delivery queue).

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let state = pulsara_shared::app::init().await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        pulsara_shared::faults::invocation(&event.context.request_id);
        webhook_dispatcher::handle(state, event.payload)
    }))
    .await
}
