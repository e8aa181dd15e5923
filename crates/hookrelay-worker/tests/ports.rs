//! Allowed-target entries with a port admit that port only, for literal addresses and for
//! names resolved at connection time: real receivers on 127.0.0.1.

#![allow(clippy::unwrap_used)]

use hookrelay_core::Job;
use hookrelay_core::job::JobRequest;
use hookrelay_core::target::TargetPolicy;
use hookrelay_testkit::receiver::{Receiver, Reply};
use hookrelay_worker::http::{HttpDeliverer, HttpSettings};

fn job(url: &str) -> Job {
    let request = JobRequest {
        timeout_secs: 5,
        ..JobRequest::new(url, "{}")
    };
    Job {
        webhook: Some("w".into()),
        ..Job::first_attempt(
            hookrelay_core::DeliveryId::parse("dlv_ports").unwrap(),
            hookrelay_core::ProjectName::parse("p").unwrap(),
            "ep-test",
            "e",
            request,
        )
    }
}

#[tokio::test]
async fn a_port_in_the_allow_list_admits_that_port_only() {
    let allowed = Receiver::start(Reply::Status(200)).await;
    let other = Receiver::start(Reply::Status(200)).await;
    let d = HttpDeliverer::new(HttpSettings {
        policy: TargetPolicy::parse(&format!("127.0.0.1:{}", allowed.port())).unwrap(),
        ..HttpSettings::default()
    })
    .unwrap();
    for host in ["127.0.0.1", "localhost"] {
        let ok = d
            .attempt(&job(&format!("http://{host}:{}/", allowed.port())), "w")
            .await;
        assert!(ok.success, "{host}: {ok:?}");
        let refused = d
            .attempt(&job(&format!("http://{host}:{}/", other.port())), "w")
            .await;
        assert!(!refused.success, "{host}");
        let error = refused.record.error.unwrap();
        assert!(error.contains("loopback address"), "{host}: {error}");
    }
    assert_eq!(allowed.count(), 2);
    assert_eq!(other.connections(), 0, "a refused port was connected to");
}
