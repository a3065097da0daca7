//! One HTTP call as the tests assert on it: the answer, its status, or its JSON body.

/// Sends `request` and returns the answer; a transport error fails the test.
pub async fn send(request: reqwest::RequestBuilder) -> reqwest::Response {
    request
        .send()
        .await
        .expect("the request reaches the server")
}

/// Sends `request` and returns the status; a transport error fails the test.
pub async fn status(request: reqwest::RequestBuilder) -> reqwest::StatusCode {
    send(request).await.status()
}

/// Sends `request` and returns its body as JSON; a transport error or another body fails the test.
pub async fn json(request: reqwest::RequestBuilder) -> serde_json::Value {
    send(request).await.json().await.expect("a JSON answer")
}
