//! Every error answer of the API has the documented shape `{"error": {"code", "message", …}}`,
//! the HTTP layer's own (404, 405, 413, 414, 431, rejected paths and bodies) included; key ids
//! outside the rule are 400; a keygen of an existing key with other parameters is 409.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

use super::Net;

async fn call(net: &Net, req: Request<Body>) -> (StatusCode, Value) {
    let res = crate::api::router(net.state.clone(), true)
        .oneshot(req)
        .await
        .unwrap();
    let status = res.status();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    assert!(ct.starts_with("application/json"), "{status} {ct} {body:?}");
    (status, serde_json::from_slice(&body).unwrap())
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn post(uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

/// The documented shape, with a non-empty message; returns the code.
fn shape(v: &Value) -> String {
    let e = &v["error"];
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    e["code"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_string()
}

#[tokio::test]
async fn http_layer_errors_have_the_json_shape() {
    let net = Net::new(2, 1, 1);
    let (s, v) = call(&net, get("/no/such/route")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(shape(&v), "bad_request");
    let (s, v) = call(&net, Request::put("/v1/keys").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    shape(&v);
    let (s, v) = call(&net, post("/v1/keys", vec![b' '; 2 * 1024 * 1024])).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    shape(&v);
    let (s, v) = call(&net, get(&format!("/v1/keys/{}", "a".repeat(9000)))).await;
    assert_eq!(s, StatusCode::URI_TOO_LONG);
    shape(&v);
    let mut req = get("/v1/keys");
    for i in 0..70 {
        req.headers_mut().insert(
            format!("x-h{i}").parse::<axum::http::HeaderName>().unwrap(),
            "v".parse().unwrap(),
        );
    }
    let (s, v) = call(&net, req).await;
    assert_eq!(s, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    shape(&v);
    let mut req = get("/v1/keys");
    req.headers_mut()
        .insert("x-big", "v".repeat(20 * 1024).parse().unwrap());
    let (s, _) = call(&net, req).await;
    assert_eq!(s, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
}

#[tokio::test]
async fn rejected_bodies_and_paths_are_400_with_the_json_shape() {
    let net = Net::new(2, 1, 1);
    let (s, v) = call(&net, post("/v1/keys", "{")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(shape(&v), "bad_request");
    // Not UTF-8 once decoded: axum's own path rejection.
    let (s, v) = call(&net, get("/v1/keys/%FF")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(shape(&v), "bad_request");
    let (s, v) = call(&net, get("/v1/operations/0x1234")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    shape(&v);
}

#[tokio::test]
async fn key_ids_outside_the_rule_are_400_at_the_api() {
    let net = Net::new(2, 1, 1);
    for bad in [
        "REL",
        "~staged",
        "..%2Frel",
        "rel%20",
        "%07rel",
        "%E2%80%8Brel",
        "Rel",
    ] {
        let (s, v) = call(&net, get(&format!("/v1/keys/{bad}"))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad} {v}");
        assert_eq!(shape(&v), "bad_request");
        let (s, v) = call(
            &net,
            post(
                &format!("/v1/keys/{bad}/sign"),
                format!(r#"{{"digest":"0x{}"}}"#, "11".repeat(32)),
            ),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad} {v}");
    }
    for bad in ["REL", "~x", "../x", "x\u{7}", "\u{200b}x", "x "] {
        let body = serde_json::json!({ "key_id": bad, "threshold": 2 }).to_string();
        let (s, v) = call(&net, post("/v1/keys", body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad:?} {v}");
        assert_eq!(shape(&v), "bad_request");
    }
    assert!(
        net.received(super::addr(0), |_| true).is_empty(),
        "no node was asked"
    );
}

#[tokio::test]
async fn creating_an_existing_key_with_other_parameters_is_409_naming_it() {
    let net = Net::new(3, 1, 1);
    let key = net.seed_key("rel", 2, 3);
    let (s, v) = call(&net, post("/v1/keys", r#"{"key_id":"rel","threshold":3}"#)).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    shape(&v);
    assert_eq!(v["error"]["code"], "key_exists");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("key rel already exists")
    );
    let parties = serde_json::json!({ "key_id": "rel", "threshold": 2, "parties": [net.members[0], net.members[1]] });
    let (s, _) = call(&net, post("/v1/keys", parties.to_string())).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, v) = call(&net, post("/v1/keys", r#"{"key_id":"rel","threshold":2}"#)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["key_session_id"], serde_json::json!(key.key_session_id));
}

/// A request with this body and `Content-Type` (none if `None`), its length stated.
fn typed(uri: &str, content_type: Option<&str>, body: &str) -> Request<Body> {
    let mut b = Request::post(uri).header("content-length", body.len().to_string());
    if let Some(t) = content_type {
        b = b.header("content-type", t);
    }
    b.body(Body::from(body.to_string())).unwrap()
}

#[tokio::test]
async fn bodies_that_are_not_application_json_are_415_and_reach_no_node() {
    let net = Net::new(3, 1, 1);
    net.seed_key("rel", 2, 3);
    let digest = format!(r#"{{"digest":"0x{}"}}"#, "11".repeat(32));
    let batch = r#"{"start_block":"1","offset_starts_at_index":"0","state_roots":[]}"#;
    for (uri, ct, body) in [
        // The CSRF "simple requests" a web page can send cross-origin without a preflight.
        ("/v1/keys/rel/sign", Some("text/plain"), digest.as_str()),
        (
            "/v1/keys/rel/sign",
            Some("text/plain;charset=UTF-8"),
            digest.as_str(),
        ),
        (
            "/v1/keys/rel/sign",
            Some("application/x-www-form-urlencoded"),
            digest.as_str(),
        ),
        (
            "/v1/keys/rel/sign",
            Some("multipart/form-data; boundary=x"),
            digest.as_str(),
        ),
        ("/v1/keys/rel/sign", None, digest.as_str()),
        (
            "/v1/keys",
            Some("text/plain"),
            r#"{"key_id":"csrf","threshold":2}"#,
        ),
        (
            "/v1/keys/rel/reshare",
            Some("text/plain"),
            r#"{"parties":[],"threshold":2}"#,
        ),
        (
            "/v1/keys/rel/refresh",
            Some("application/x-www-form-urlencoded"),
            "",
        ),
        ("/api/v1/sign/state", Some("text/plain"), batch),
        (
            "/v1/keys/rel/sign",
            Some("application/jsonx"),
            digest.as_str(),
        ),
    ] {
        let (s, v) = call(&net, typed(uri, ct, body)).await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{uri} {ct:?} {v}");
        assert_eq!(shape(&v), "bad_request");
    }
    for i in 0..3 {
        assert!(
            net.received(super::addr(i), |_| true).is_empty(),
            "no node was asked"
        );
    }
    // JSON, with parameters and in any case, is read (and here fails on its content, not type).
    for ct in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
    ] {
        let (s, v) = call(&net, typed("/v1/keys", Some(ct), "{")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{ct} {v}");
    }
    // Reads that carry no body need no type.
    let (s, _) = call(&net, get("/v1/keys/rel")).await;
    assert_eq!(s, StatusCode::OK);
}
