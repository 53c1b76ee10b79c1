//! Managing one's own platform integrations (IVR key; another key family's
//! are 404): `POST /ivr/integrations`, `GET /ivr/integrations`,
//! `DELETE /ivr/integrations/{integrationId}`.

use chrono::Utc;
use pulsara_shared::domain::ids::IntegrationId;
use pulsara_shared::domain::integration::CreateIntegrationRequest;
use pulsara_shared::http::{json_body, optional_path_id, public_base_url};
use pulsara_shared::responses::{IntegrationDeletedOut, IntegrationListOut, IntegrationOut};
use pulsara_shared::services::integrations::{create, delete, list};
use pulsara_shared::{ApiError, ApiResponse, AppState, Request};

/// The registration body: two secrets and a description.
const BODY_LIMIT: usize = 4 * 1024;
/// What precedes our routes in a request's path is the API's base.
const ROUTE: &str = "/ivr/integrations";

pub async fn handle(state: &AppState, req: Request) -> Result<ApiResponse, ApiError> {
    let caller = state.auth.ivr(&req).await?;
    let id: Option<IntegrationId> = optional_path_id(&req, "integrationId")?;
    let base = public_base_url(&state.config, &req, ROUTE);
    let now = Utc::now();
    let response = match (req.method().as_str(), id) {
        ("POST", None) => {
            let body: CreateIntegrationRequest = json_body(&req, BODY_LIMIT)?;
            let record = create(state, &caller, body, now).await?;
            ApiResponse::created(IntegrationOut::new(&record, &base))
                .message("Integration registered: paste its URLs into the platform")
        }
        ("GET", None) => {
            let integrations = list(state, &caller)
                .await?
                .iter()
                .map(|i| IntegrationOut::new(i, &base))
                .collect();
            ApiResponse::ok(IntegrationListOut { integrations })
        }
        ("DELETE", Some(id)) => {
            delete(state, &caller, &id).await?;
            ApiResponse::ok(IntegrationDeletedOut {
                integration_id: id,
                deleted: true,
            })
            .message("Integration deleted")
        }
        _ => return Err(ApiError::MethodNotAllowed),
    };
    Ok(response.rate_limit(&caller.rate))
}
