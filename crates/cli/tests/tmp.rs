//! Temporary storage against a real `cloudlet serve`: uploads with an env
//! key, downloads by URL alone, the object limit, the per-env quota,
//! expiry, and objects kept across a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::Value;
use support::TestServer;

const ADMIN: &str = "admin-secret";

fn env_key(server: &TestServer, env: &str) -> String {
    let out = server.cli(&["envs", "key", env, "--key", ADMIN]);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn upload(
    server: &TestServer,
    env: &str,
    key: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{}/v1/envs/{env}/tmp", server.url))
        .header("content-type", content_type)
        .body(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap()
}

async fn code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn an_upload_with_the_envs_key_is_served_to_anyone_with_its_url() {
    let server = TestServer::start(&["--admin-key", ADMIN]);
    let key = env_key(&server, "shop");
    let bytes: Vec<u8> = (0..=255u8).cycle().take(1024 * 1024).collect();
    let response = upload(&server, "shop", Some(&key), "image/png", bytes.clone()).await;
    assert_eq!(response.status(), 201);
    let object: Value = response.json().await.unwrap();
    assert_eq!(object["size"], 1024 * 1024);
    let url = object["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/v1/tmp/shop/", server.url)),
        "{url}"
    );

    let download = reqwest::get(url).await.unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(download.headers()["content-type"], "image/png");
    assert!(download.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("sandbox"));
    assert_eq!(download.bytes().await.unwrap().as_ref(), bytes.as_slice());

    let name = object["name"].as_str().unwrap();
    let elsewhere = reqwest::get(format!("{}/v1/tmp/other/{name}", server.url))
        .await
        .unwrap();
    assert_eq!(code(elsewhere).await, (404, "RESOURCE_NOT_FOUND".into()));
    let guessed = reqwest::get(format!("{}/v1/tmp/shop/{}", server.url, "0".repeat(32)))
        .await
        .unwrap();
    assert_eq!(guessed.status(), 404);
}

#[tokio::test]
async fn an_upload_needs_the_envs_key() {
    let server = TestServer::start(&["--admin-key", ADMIN]);
    let other = env_key(&server, "other");
    let none = upload(&server, "shop", None, "text/plain", b"x".to_vec()).await;
    assert_eq!(code(none).await, (401, "PERMISSION_DENIED".into()));
    let wrong = upload(&server, "shop", Some(&other), "text/plain", b"x".to_vec()).await;
    assert_eq!(code(wrong).await.0, 401);
}

#[tokio::test]
async fn objects_over_the_limit_or_the_envs_quota_are_refused() {
    let server = TestServer::start(&[
        "--tmp-max-object-bytes",
        "1000",
        "--tmp-env-quota-bytes",
        "1500",
    ]);
    let big = support::answer_to(
        &server.url,
        "POST /v1/envs/default/tmp HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n",
    )
    .await;
    assert!(big.starts_with("HTTP/1.1 413"), "{big}");
    assert!(big.contains("EXCEED_REQUEST_SIZE_LIMIT"), "{big}");
    let first = upload(&server, "default", None, "text/plain", vec![b'x'; 900]).await;
    assert_eq!(first.status(), 201);
    let second = upload(&server, "default", None, "text/plain", vec![b'x'; 900]).await;
    assert_eq!(code(second).await, (507, "EXCEED_STORAGE_QUOTA".into()));
    let elsewhere = upload(&server, "shop", None, "text/plain", vec![b'x'; 900]).await;
    assert_eq!(elsewhere.status(), 201, "each env has a quota of its own");
}

#[tokio::test]
async fn an_object_expires_and_a_live_one_survives_a_restart() {
    let server = TestServer::start(&["--tmp-ttl-seconds", "1"]);
    let response = upload(&server, "default", None, "text/plain", b"soon".to_vec()).await;
    let short: Value = response.json().await.unwrap();
    let data = server.kill();
    let server = TestServer::start_in(data, &["--tmp-ttl-seconds", "60"]);
    let response = upload(&server, "default", None, "text/plain", b"kept".to_vec()).await;
    let kept: Value = response.json().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let url_of = |object: &Value| {
        format!(
            "{}/v1/tmp/default/{}",
            server.url,
            object["name"].as_str().unwrap()
        )
    };
    assert_eq!(
        reqwest::get(url_of(&short)).await.unwrap().status(),
        404,
        "expired"
    );
    let data = server.kill();
    let server = TestServer::start_in(data, &[]);
    let again = reqwest::get(format!(
        "{}/v1/tmp/default/{}",
        server.url,
        kept["name"].as_str().unwrap()
    ))
    .await
    .unwrap();
    assert_eq!(again.text().await.unwrap(), "kept", "kept across a restart");
}

#[tokio::test]
async fn a_publishable_key_invokes_and_uploads_and_reads_nothing() {
    let server = TestServer::start(&["--admin-key", ADMIN]);
    let add = support::examples_dir().join("add");
    let out = server.cli(&[
        "deploy",
        add.to_str().unwrap(),
        "--env",
        "shop",
        "--key",
        ADMIN,
    ]);
    assert!(out.status.success(), "{out:?}");
    let env_key = env_key(&server, "shop");
    let out = server.cli(&["envs", "key", "shop", "--publishable", "--key", ADMIN]);
    assert!(out.status.success(), "{out:?}");
    let publishable = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(publishable.starts_with("pk_"), "{publishable}");
    let client = reqwest::Client::new();

    let invoked = client
        .post(format!("{}/v1/envs/shop/functions/add", server.url))
        .bearer_auth(&publishable)
        .body(r#"{"x":1,"y":2}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(invoked.status(), 200);
    let request_id = invoked.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(invoked.text().await.unwrap(), "3");
    let uploaded = upload(
        &server,
        "shop",
        Some(&publishable),
        "text/plain",
        b"x".to_vec(),
    )
    .await;
    assert_eq!(uploaded.status(), 201);

    let record_url = format!("{}/v1/envs/shop/invocations/{request_id}", server.url);
    let record = client
        .get(&record_url)
        .bearer_auth(&publishable)
        .send()
        .await
        .unwrap();
    assert_eq!(code(record).await, (401, "PERMISSION_DENIED".into()));
    let cors = client
        .get(format!("{}/v1/envs/shop/cors", server.url))
        .bearer_auth(&publishable)
        .send()
        .await
        .unwrap();
    assert_eq!(code(cors).await.0, 401);
    let deploy = client
        .put(format!("{}/v1/envs/shop/functions/add", server.url))
        .bearer_auth(&publishable)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(code(deploy).await.0, 401);
    let by_env_key = client
        .get(&record_url)
        .bearer_auth(&env_key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        by_env_key.status(),
        200,
        "the env's own key still reads records"
    );
    let elsewhere = client
        .post(format!("{}/v1/envs/other/functions/add", server.url))
        .bearer_auth(&publishable)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(code(elsewhere).await.0, 401, "a key is its env's only");
}

/// Fetches `event.url` in the js engine and answers what came, or the error.
const FETCHER: &str = r"exports.main = async (event) => {
  try {
    const answer = await fetch(event.url, { method: event.method })
    return { status: answer.status, type: answer.headers.get('content-type'), text: await answer.text() }
  } catch (error) {
    return { error: error.name + ': ' + error.message }
  }
}
";

/// A server with FETCHER deployed as `fetcher`, and the folder it came from.
fn serving_fetcher() -> (TestServer, tempfile::TempDir) {
    let server = TestServer::start(&["--admin-key", ADMIN]);
    let root = tempfile::tempdir().unwrap();
    let dir = support::write_js_function(root.path(), "fetcher", FETCHER, "{}");
    let out = server.cli(&["deploy", &dir, "--key", ADMIN]);
    assert!(out.status.success(), "{out:?}");
    (server, root)
}

#[tokio::test]
async fn the_js_engines_fetch_reads_temporary_objects_and_nothing_else() {
    let (server, _root) = serving_fetcher();
    let key = env_key(&server, "default");
    let uploaded = upload(&server, "default", Some(&key), "text/csv", b"a,b".to_vec()).await;
    let object: Value = uploaded.json().await.unwrap();
    let url = object["url"].as_str().unwrap();
    let fetch = |url: String, method: &'static str| {
        let server_url = server.url.clone();
        async move {
            let answer = reqwest::Client::new()
                .post(format!("{server_url}/v1/functions/fetcher"))
                .bearer_auth(ADMIN)
                .json(&serde_json::json!({"url": url, "method": method}))
                .send()
                .await
                .unwrap();
            answer.json::<Value>().await.unwrap()
        }
    };

    let found = fetch(url.to_owned(), "GET").await;
    assert_eq!(found["status"], 200, "{found}");
    assert_eq!(found["type"], "text/csv");
    assert_eq!(found["text"], "a,b");
    let gone = fetch(
        format!("{}/v1/tmp/default/{}", server.url, "0".repeat(32)),
        "GET",
    )
    .await;
    assert_eq!(gone["status"], 404, "{gone}");
    let other = fetch(format!("{}/v1/functions/fetcher", server.url), "GET").await;
    let error = other["error"].as_str().unwrap();
    assert!(
        error.starts_with("TypeError: fetch failed: the js engine's fetch reaches this server's temporary objects"),
        "{error}"
    );
    let posted = fetch(url.to_owned(), "POST").await;
    assert!(
        posted["error"]
            .as_str()
            .unwrap()
            .contains("read with GET or HEAD, not POST"),
        "{posted}"
    );
}

#[tokio::test]
async fn cloudlet_invoke_cdn_uploads_a_file_whose_url_the_function_fetches() {
    let (server, root) = serving_fetcher();
    let file = root.path().join("big.txt");
    std::fs::write(&file, "x".repeat(1024 * 1024)).unwrap();
    let cdn = format!("url={}", file.display());
    let out = server.cli(&[
        "invoke",
        "fetcher",
        "--data",
        r#"{"method":"GET"}"#,
        "--cdn",
        &cdn,
        "--key",
        ADMIN,
    ]);
    assert!(out.status.success(), "{out:?}");
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["status"], 200, "{answer}");
    assert_eq!(answer["type"], "application/octet-stream");
    assert_eq!(answer["text"].as_str().unwrap().len(), 1024 * 1024);
}
