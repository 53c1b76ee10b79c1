//! Lambda entrypoint (SNS subscription to the SES configuration set's
//! bounce and complaint events): build state once, then handle each event.

use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let state = pulsara_shared::app::init().await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        pulsara_shared::faults::invocation(&event.context.request_id);
        email_events::handle(state, event.payload)
    }))
    .await
}
