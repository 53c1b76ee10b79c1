//! Admin CLI, against whichever DynamoDB the AWS SDK is pointed at (the local
//! moto via `AWS_ENDPOINT_URL`, or an AWS account via the usual credentials).
//!
//!   pulsara-admin create-admin [--email E] [--replace]
//!       Creates an admin user. E-mail from --email or PULSARA_ADMIN_EMAIL, password
//!       from PULSARA_ADMIN_PASSWORD (never a command-line argument, so it stays
//!       out of shell history and `ps`). Needs ADMIN_USERS_TABLE.
//!   pulsara-admin seed-demo
//!       Local demo data: the admin above (password reset), a demo restaurant,
//!       and a fresh API key, printed once; with SECRETS_KMS_KEY_ARN also an
//!       ElevenLabs and a Twilio integration of that key (their secrets printed
//!       once). Needs the full function environment.

use chrono::Utc;
use pulsara_shared::auth::IvrCaller;
use pulsara_shared::domain::api_key::{ApiKeyRecord, ApiKeyRequest};
use pulsara_shared::domain::email_address::EmailAddress;
use pulsara_shared::domain::hashing;
use pulsara_shared::domain::restaurant::RestaurantInput;
use pulsara_shared::services;
use pulsara_shared::store::admins::{AdminStore, AdminUser};
use pulsara_shared::store::StoreError;
use pulsara_shared::AppState;

const DEMO_PHONE: &str = "+15550100100";

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("create-admin") => create_admin(&args[1..]).await.map(|_| ()),
        Some("seed-demo") => seed_demo().await,
        _ => Err("usage: pulsara-admin create-admin [--email E] [--replace] | seed-demo".into()),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn flag_value(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

async fn admin_store() -> Result<AdminStore> {
    let table = std::env::var("ADMIN_USERS_TABLE").map_err(|_| "ADMIN_USERS_TABLE is not set")?;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    Ok(AdminStore::new(aws_sdk_dynamodb::Client::new(&sdk), table))
}

async fn create_admin(args: &[String]) -> Result<AdminUser> {
    let email = flag_value(args, "--email")
        .or_else(|| std::env::var("PULSARA_ADMIN_EMAIL").ok())
        .ok_or("give --email or set PULSARA_ADMIN_EMAIL")?;
    let email = EmailAddress::parse(&email)
        .map_err(|_| format!("'{}' is not an e-mail address", email.trim()))?;
    let password =
        std::env::var("PULSARA_ADMIN_PASSWORD").map_err(|_| "set PULSARA_ADMIN_PASSWORD")?;
    if password.chars().count() < 12 {
        return Err("the password must be at least 12 characters".into());
    }
    let replace = args.iter().any(|a| a == "--replace");
    let store = admin_store().await?;
    let now = Utc::now();
    let user_id = match store.get(&email).await? {
        Some(existing) => existing.user_id,
        None => format!("usr_{}", uuid::Uuid::now_v7().simple()),
    };
    let user = AdminUser {
        email: email.clone(),
        user_id,
        password_hash: hashing::hash_password(&password),
        role: "admin".into(),
        created_at: now,
        updated_at: now,
    };
    match store.put(&user, replace).await {
        Ok(()) => {
            println!("admin user {email} ready (id {})", user.user_id);
            Ok(user)
        }
        Err(StoreError::AlreadyExists) => {
            Err(format!("{email} already exists; pass --replace to reset the password").into())
        }
        Err(e) => Err(e.into()),
    }
}

async fn seed_demo() -> Result<()> {
    let admin = create_admin(&["--replace".to_string()]).await?;
    let state = AppState::from_env().await?;
    let now = Utc::now();
    let restaurant = match services::find_restaurant(&state, DEMO_PHONE).await? {
        Some(r) => r,
        None => {
            let input: RestaurantInput = serde_json::from_value(serde_json::json!({
                "name": "Demo Trattoria",
                "phoneNumbers": [DEMO_PHONE],
                "timezone": "America/New_York",
                "aiEnabled": true,
                "callHoursStart": "09:00",
                "callHoursEnd": "21:00",
                "schedule": {"friday": [{"start": "09:00", "end": "23:30"}],
                             "saturday": [{"start": "10:00", "end": "01:00"}]},
                "agent": {"elevenlabs_agent_id": "demo_agent", "voice_id": "tnSpp4vdxKPjI9w0GnoV",
                          "tools": ["end_call", "get_address", "forward_call"],
                          "vapi_assistant_id": "demo-vapi-assistant",
                          "retell_agent_id": "demo_retell_agent"},
                "forwarding_number": "(555) 010-0199",
                "notificationEmails": ["owner@demo-trattoria.example"]
            }))?;
            services::create_restaurant(&state, input, now)
                .await
                .map_err(|e| format!("could not create the demo restaurant: {e}"))?
        }
    };
    let request = ApiKeyRequest {
        name: "Local demo IVR".into(),
        description: Some("created by pulsara-admin seed-demo".into()),
        ..Default::default()
    };
    let (plaintext, record) = services::mint_api_key(&state, request, &admin.user_id, now)
        .await
        .map_err(|e| format!("could not mint the demo key: {e}"))?;
    println!(
        "demo restaurant: {} ({DEMO_PHONE})",
        restaurant.restaurant_id
    );
    println!("demo api key:    {plaintext}   (key id {})", record.key_id);
    if state.config.secrets_kms_key_arn.is_some() {
        seed_integrations(&state, record, now).await?;
    }
    Ok(())
}

/// With `SECRETS_KMS_KEY_ARN` set: an ElevenLabs, a Twilio, a Vapi and a Retell integration of the demo key,
/// with fresh secrets printed once (the bench signs its platform requests with them).
async fn seed_integrations(
    state: &AppState,
    key: ApiKeyRecord,
    now: chrono::DateTime<Utc>,
) -> Result<()> {
    use pulsara_shared::domain::hashing::{hex_lower, random_bytes};
    use pulsara_shared::domain::integration::CreateIntegrationRequest;
    use pulsara_shared::services::integrations::create;
    let caller = IvrCaller::acting_as(key);
    let hex = |n: usize| {
        let mut b = vec![0u8; n];
        random_bytes(&mut b);
        hex_lower(&b)
    };
    for (platform, secret) in [
        ("elevenlabs", format!("wsec_{}", hex(16))),
        ("twilio", hex(16)),
        ("vapi", format!("vsec_{}", hex(16))),
        ("retell", format!("key_{}", hex(14))),
    ] {
        let body = CreateIntegrationRequest {
            platform: platform.into(),
            secret: secret.clone(),
            elevenlabs_api_key: None,
            description: Some("created by pulsara-admin seed-demo".into()),
        };
        let i = create(state, &caller, body, now)
            .await
            .map_err(|e| format!("could not register the demo {platform} integration: {e}"))?;
        println!(
            "demo {platform} integration: {}   secret {secret}",
            i.integration_id
        );
    }
    Ok(())
}
