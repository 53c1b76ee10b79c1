//! Holds every route's response type to `infra/openapi.yaml`: the fields a
//! type can serialize (from its JSON schema, derived from the type itself)
//! must be exactly the fields the document gives that route's `data`, at
//! every depth. A field added to a response type but not documented, or
//! documented but never sent, fails here.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde_json::Value;

use crate::domain::platform::elevenlabs::ConversationInitResponse;
use crate::domain::restaurant::ConfigView;
use crate::responses::*;

/// Every operation's success response, and the type that produces it.
fn routes() -> Vec<(&'static str, &'static str, Value)> {
    fn s<T: JsonSchema>() -> Value {
        serde_json::to_value(schemars::schema_for!(T)).unwrap()
    }
    vec![
        ("POST", "/ivr/auth/login", s::<LoginOut>()),
        ("POST", "/ivr/auth/api-key", s::<ApiKeyIssuedOut>()),
        ("GET", "/ivr/auth/api-keys", s::<ApiKeyListOut>()),
        (
            "POST",
            "/ivr/auth/api-key/{keyId}/rotate",
            s::<ApiKeyRotatedOut>(),
        ),
        (
            "DELETE",
            "/ivr/auth/api-key/{keyId}",
            s::<ApiKeyRevokedOut>(),
        ),
        ("POST", "/ivr/restaurants", s::<RestaurantOut>()),
        (
            "GET",
            "/ivr/restaurants/{restaurantId}",
            s::<RestaurantOut>(),
        ),
        (
            "PATCH",
            "/ivr/restaurants/{restaurantId}",
            s::<RestaurantOut>(),
        ),
        (
            "GET",
            "/ivr/restaurant/{restaurantId}/config",
            s::<ConfigView>(),
        ),
        ("POST", "/ivr/call", s::<ProcessCallOut>()),
        ("POST", "/ivr/call/{callId}/complete", s::<CallResultOut>()),
        (
            "GET",
            "/ivr/restaurants/{restaurantId}/calls",
            s::<CallListOut>(),
        ),
        ("GET", "/ivr/calls/{callId}", s::<CallDetailOut>()),
        (
            "POST",
            "/ivr/webhooks/register",
            s::<WebhookRegisteredOut>(),
        ),
        ("GET", "/ivr/webhooks", s::<WebhookListOut>()),
        (
            "DELETE",
            "/ivr/webhooks/{webhookId}",
            s::<WebhookDeletedOut>(),
        ),
        (
            "POST",
            "/ivr/webhooks/{webhookId}/test",
            s::<DeliveryQueuedOut>(),
        ),
        (
            "POST",
            "/ivr/webhooks/{webhookId}/rotate-secret",
            s::<SecretRotatedOut>(),
        ),
        (
            "GET",
            "/ivr/webhooks/{webhookId}/deliveries",
            s::<DeliveryListOut>(),
        ),
        (
            "POST",
            "/ivr/webhooks/{webhookId}/deliveries/{deliveryId}/replay",
            s::<DeliveryQueuedOut>(),
        ),
        ("POST", "/ivr/integrations", s::<IntegrationOut>()),
        ("GET", "/ivr/integrations", s::<IntegrationListOut>()),
        (
            "DELETE",
            "/ivr/integrations/{integrationId}",
            s::<IntegrationDeletedOut>(),
        ),
    ]
}

/// The platform routes: their 2xx body is the platform's own format, not our
/// envelope, so a type is held to the whole documented body instead.
fn platform_routes() -> Vec<(&'static str, &'static str, Value)> {
    vec![(
        "POST",
        "/ivr/integrations/{integrationId}/elevenlabs/conversation-init",
        serde_json::to_value(schemars::schema_for!(ConversationInitResponse)).unwrap(),
    )]
}

/// Platform routes whose 2xx body has no Rust type to hold it to: TwiML
/// (text), the acknowledgements built in the function, and Vapi's and
/// Retell's answers (held to the platforms' own SDK models in the e2e tests).
const UNTYPED_PLATFORM_ROUTES: [(&str, &str); 6] = [
    (
        "POST",
        "/ivr/integrations/{integrationId}/elevenlabs/post-call",
    ),
    ("POST", "/ivr/integrations/{integrationId}/twilio/voice"),
    ("POST", "/ivr/integrations/{integrationId}/twilio/status"),
    ("POST", "/ivr/integrations/{integrationId}/vapi"),
    ("POST", "/ivr/integrations/{integrationId}/retell/inbound"),
    ("POST", "/ivr/integrations/{integrationId}/retell/events"),
];

/// The documented 2xx JSON body of an operation (a platform route's).
fn documented_body<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    let op = &doc["paths"][path][method.to_ascii_lowercase()];
    let (_, ok) = op["responses"]
        .as_object()
        .unwrap_or_else(|| panic!("{method} {path}: no responses"))
        .iter()
        .find(|(code, _)| code.starts_with('2'))
        .unwrap_or_else(|| panic!("{method} {path}: no 2xx response"));
    resolve(
        &resolve(ok, doc)["content"]["application/json"]["schema"],
        doc,
    )
}

#[test]
fn platform_answers_match_their_openapi_schema() {
    let doc = document();
    for (method, path, schema) in platform_routes() {
        let ours = fields(&schema, &schema).unwrap_or_default();
        let documented = fields(documented_body(&doc, method, path), &doc).unwrap_or_default();
        assert!(
            !ours.0.is_empty() && !documented.0.is_empty(),
            "{method} {path}"
        );
        let mut found = Vec::new();
        diff(&ours, &documented, "body", &mut found);
        assert!(found.is_empty(), "{method} {path}: {}", found.join("\n"));
    }
}

/// A schema's fields as a tree: each property and, when it holds objects
/// (directly, in an array, or nullable), their fields in turn. `$ref`s are
/// followed in `root`; `allOf`/`anyOf`/`oneOf` are merged; a property whose
/// schema is `false` (forbidden) is not a field.
#[derive(Debug, Default, PartialEq, Eq)]
struct Fields(BTreeMap<String, Option<Fields>>);

fn resolve<'a>(schema: &'a Value, root: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.trim_start_matches('#');
            resolve(
                root.pointer(pointer).unwrap_or_else(|| panic!("no {r}")),
                root,
            )
        }
        None => schema,
    }
}

fn fields(schema: &Value, root: &Value) -> Option<Fields> {
    let schema = resolve(schema, root);
    let mut out: Option<Fields> = None;
    let mut merge = |f: Option<Fields>| {
        if let Some(f) = f {
            out.get_or_insert_with(Fields::default).0.extend(f.0);
        }
    };
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        let mut f = Fields::default();
        for (name, prop) in props {
            if prop == &Value::Bool(false) {
                continue;
            }
            f.0.insert(name.clone(), fields(prop, root));
        }
        merge(Some(f));
    }
    if let Some(items) = schema.get("items") {
        merge(fields(items, root));
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        for part in schema
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            merge(fields(part, root));
        }
    }
    // A property that the allOf part forbids (`duplicate: false`) is not a field.
    if let (Some(f), Some(parts)) = (&mut out, schema.get("allOf").and_then(Value::as_array)) {
        for part in parts {
            for (name, prop) in part
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if prop == &Value::Bool(false) {
                    f.0.remove(name);
                }
            }
        }
    }
    out
}

/// The differences between two field trees, as paths.
fn diff(ours: &Fields, doc: &Fields, path: &str, out: &mut Vec<String>) {
    let names: BTreeSet<&String> = ours.0.keys().chain(doc.0.keys()).collect();
    for name in names {
        let here = format!("{path}.{name}");
        match (ours.0.get(name), doc.0.get(name)) {
            (Some(_), None) => out.push(format!("{here}: sent but not documented")),
            (None, Some(_)) => out.push(format!("{here}: documented but never sent")),
            (Some(Some(a)), Some(Some(b))) => diff(a, b, &here, out),
            (Some(Some(_)), Some(None)) => {
                out.push(format!("{here}: an object, documented as a value"))
            }
            (Some(None), Some(Some(_))) => {
                out.push(format!("{here}: a value, documented as an object"))
            }
            _ => {}
        }
    }
}

fn document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/openapi.yaml");
    let text = std::fs::read_to_string(path).expect("infra/openapi.yaml");
    serde_yaml::from_str(&text).expect("the OpenAPI document is YAML")
}

/// The documented `data` of an operation's 2xx response.
fn documented_data<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    let op = &doc["paths"][path][method.to_ascii_lowercase()];
    let responses = op["responses"]
        .as_object()
        .unwrap_or_else(|| panic!("{method} {path}: no responses"));
    let (_, ok) = responses
        .iter()
        .find(|(code, _)| code.starts_with('2'))
        .unwrap_or_else(|| panic!("{method} {path}: no 2xx response"));
    let ok = resolve(ok, doc);
    let envelope = resolve(&ok["content"]["application/json"]["schema"], doc);
    &envelope["properties"]["data"]
}

#[test]
fn every_response_type_matches_its_openapi_schema() {
    let doc = document();
    let mut problems = Vec::new();
    for (method, path, schema) in routes() {
        let ours = fields(&schema, &schema).unwrap_or_default();
        let documented = fields(documented_data(&doc, method, path), &doc).unwrap_or_default();
        // An empty tree on either side would make the comparison vacuous.
        assert!(
            !ours.0.is_empty(),
            "{method} {path}: the type's schema has no fields"
        );
        assert!(
            !documented.0.is_empty(),
            "{method} {path}: the document gives no fields"
        );
        let mut found = Vec::new();
        diff(&ours, &documented, "data", &mut found);
        problems.extend(found.into_iter().map(|p| format!("{method} {path}: {p}")));
    }
    assert!(
        problems.is_empty(),
        "response types and infra/openapi.yaml disagree:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_documented_operation_has_a_response_type() {
    let doc = document();
    let covered: BTreeSet<(String, String)> = routes()
        .into_iter()
        .chain(platform_routes())
        .map(|(m, p, _)| (m, p))
        .chain(UNTYPED_PLATFORM_ROUTES)
        .map(|(m, p)| (m.to_ascii_lowercase(), p.to_string()))
        .collect();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                assert!(
                    covered.contains(&(method.clone(), path.clone())),
                    "{method} {path} has no response type in openapi_check::routes"
                );
            }
        }
    }
}

#[test]
fn the_check_sees_a_missing_and_an_extra_field() {
    let doc = serde_json::json!({"properties": {"a": {}, "b": {"type": "object", "properties": {"c": {}}}}});
    let ours =
        serde_json::json!({"properties": {"a": {}, "b": {"properties": {"d": {}}}, "e": {}}});
    let mut found = Vec::new();
    diff(
        &fields(&ours, &ours).unwrap(),
        &fields(&doc, &doc).unwrap(),
        "data",
        &mut found,
    );
    assert_eq!(
        found,
        vec![
            "data.b.c: documented but never sent",
            "data.b.d: sent but not documented",
            "data.e: sent but not documented",
        ]
    );
}
