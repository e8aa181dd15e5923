//! Publishes one event into hookrelay from Rust, without the API:
//!
//! ```sh
//! cargo run -p hookrelay-producer --example publish -- demo deployment_request_finished deployment deployment-1
//! ```
//!
//! Arguments: project, event, object type, object name (defaults as above). Redis and the key
//! prefix come from `HOOKRELAY_REDIS_URL` and `HOOKRELAY_KEY_PREFIX`, as for hookrelay itself.
//! Prints `{"id", "deliveries"}`, then the status of each delivery.

use hookrelay_producer::{EventIn, Producer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.into());
    let redis_url =
        std::env::var("HOOKRELAY_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = std::env::var("HOOKRELAY_KEY_PREFIX").unwrap_or_else(|_| "hookrelay".into());

    let producer = Producer::connect(&redis_url, &prefix).await?;
    let event = EventIn::new(
        arg(1, "deployment_request_finished"),
        arg(2, "deployment"),
        arg(3, "deployment-1"),
    )
    .with_data(serde_json::json!({"request_id": "r-1", "status": "completed"}));
    let project = hookrelay_core::ProjectName::parse(arg(0, "demo"))?;
    let answer = producer.publish_event(&project, event).await?;
    println!("{}", serde_json::to_string(&answer)?);
    for id in &answer.deliveries {
        if let Some(d) = producer.delivery(id).await? {
            println!("{id} {}", d.status.as_str());
        }
    }
    Ok(())
}
