//! The in-memory copy of a project's webhooks never hides a change made through hookrelay,
//! even by another API process (here: another `Registry` on its own connection).

#![allow(clippy::unwrap_used)]

use hookrelay_core::{Keys, Webhook, WebhookDraft};
use hookrelay_producer::Registry;
use hookrelay_queue::Queue;
use hookrelay_testkit::RedisServer;

fn hook(name: &str, url: &str) -> Webhook {
    WebhookDraft::new(name, url, "deployment", "d1", "*").into_webhook(
        format!("id-{name}"),
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        hookrelay_core::time::Timestamp::now(),
    )
}

#[tokio::test]
async fn every_change_through_any_process_is_seen_at_once() {
    let server = RedisServer::start();
    let a = Registry::new(&Queue::connect(&server.url(), Keys::new("c")).await.unwrap());
    let b = Registry::new(&Queue::connect(&server.url(), Keys::new("c")).await.unwrap());
    assert!(b.list(&p()).await.unwrap().is_empty());

    a.create(&p(), &hook("one", "http://example.com/1"))
        .await
        .unwrap();
    assert_eq!(b.list(&p()).await.unwrap().len(), 1);
    // Served from memory now, and still right.
    assert_eq!(b.list(&p()).await.unwrap()[0].url, "http://example.com/1");

    a.update(&p(), "one", |w| {
        Ok(Webhook {
            url: "http://example.com/changed".into(),
            ..w.clone()
        })
    })
    .await
    .unwrap();
    assert_eq!(
        b.list(&p()).await.unwrap()[0].url,
        "http://example.com/changed"
    );

    a.create(&p(), &hook("two", "http://example.com/2"))
        .await
        .unwrap();
    let names: Vec<String> = b
        .list(&p())
        .await
        .unwrap()
        .iter()
        .map(|w| w.name.clone())
        .collect();
    assert_eq!(names, ["one", "two"]);

    a.delete(&p(), "one").await.unwrap();
    let names: Vec<String> = b
        .list(&p())
        .await
        .unwrap()
        .iter()
        .map(|w| w.name.clone())
        .collect();
    assert_eq!(names, ["two"]);

    // Data lost (e.g. Redis restarted without persistence): nothing stale is served.
    let mut c = server.connection();
    let _: () = redis::cmd("FLUSHALL").query(&mut c).unwrap();
    assert!(b.list(&p()).await.unwrap().is_empty());
}

fn p() -> hookrelay_core::ProjectName {
    hookrelay_core::ProjectName::parse("p").expect("a valid project name")
}
