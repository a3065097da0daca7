//! One HTTP call as the tests assert on it: the status it gets back.

/// Sends `request` and returns the status; a transport error fails the test.
pub async fn status(request: reqwest::RequestBuilder) -> reqwest::StatusCode {
    request
        .send()
        .await
        .expect("the request reaches the server")
        .status()
}
