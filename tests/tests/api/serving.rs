//! What else the socket serves: health and reflection.

use phantomnet_tests::TestLab;

#[allow(unused_imports)]
use super::*;

/// Health and reflection on the same socket.
pub async fn health(t: &TestLab) {
    let ch = unix_channel(t.api_socket()).await.unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(ch.clone());
    let h = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "phantomnet.v1.Agent".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        h.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let mut refl =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(ch);
    let req = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let mut resp = refl
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let listed = format!("{:?}", resp.message().await.unwrap().unwrap());
    assert!(
        listed.contains("phantomnet.v1.Agent") && listed.contains("grpc.health.v1.Health"),
        "{listed}"
    );
}
