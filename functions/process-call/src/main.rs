//! Lambda entrypoint: build state once per cold start, then serve.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let state = pulsara_shared::app::init().await?;
    // The phone metadata in the init phase, not in the first call's answer.
    pulsara_shared::domain::phone::warm_up();
    pulsara_shared::http::serve(state, process_call::handle).await
}
