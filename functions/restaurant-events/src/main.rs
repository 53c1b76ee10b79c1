//! Lambda entrypoint (DynamoDB stream consumer of the restaurants table).

use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let state = pulsara_shared::app::init().await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| {
        pulsara_shared::faults::invocation(&event.context.request_id);
        restaurant_events::handle(state, event.payload)
    }))
    .await
}
