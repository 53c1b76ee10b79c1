//! Lambda entrypoint: build state once per cold start, then serve.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let state = pulsara_shared::app::init().await?;
    pulsara_shared::http::serve(state, integrations::handle).await
}
