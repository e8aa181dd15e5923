//! `pickup`: how long an idle worker takes to deliver a new event. One worker waits with
//! nothing to do; events are published through the API one at a time, each only after the
//! previous one arrived and a pause (20–120 ms, varying) so the worker is back to waiting
//! on Redis. Printed: publish → received, and the API's 202 alone.

use std::path::Path;
use std::time::Duration;

use crate::report::{Percentiles, Table, now_us};
use crate::scenarios::{Opts, count, load_average, setup};

/// Longest wait for one event before the scenario gives up.
const PER_EVENT_DEADLINE: Duration = Duration::from_secs(10);

/// Runs the scenario and prints its table.
pub async fn run(opts: &Opts, bin: &Path) -> anyhow::Result<()> {
    println!("\n## pickup: single events to an idle worker");
    let mut s = setup(opts, bin).await?;
    s.stack.start_workers(1).await?;
    // Let the worker settle into its idle wait.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut e2e = Vec::new();
    let mut accepted = Vec::new();
    let mut missed = 0u64;
    for seq in 0..opts.samples {
        let pause = 20 + (seq * 37) % 101;
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let before = s.sink.count();
        let sent = now_us();
        match s.api.publish(seq, sent).await {
            Ok(202) => accepted.push(now_us() - sent),
            Ok(status) => anyhow::bail!("publish answered {status}"),
            Err(e) => anyhow::bail!("publish failed: {e}"),
        }
        if !s.sink.wait_for(before + 1, PER_EVENT_DEADLINE).await {
            missed += 1;
            continue;
        }
        if let Some(lat) = s
            .sink
            .hits_since(before as usize)
            .first()
            .and_then(|h| h.latency_us())
        {
            e2e.push(lat);
        }
    }
    let e2e = Percentiles::new(e2e);
    let accepted = Percentiles::new(accepted);
    let mut t = Table::new(
        &format!(
            "idle-worker pickup ({} events, one at a time)",
            count(opts.samples)
        ),
        &["", "p50", "p99", "max"],
    );
    for (name, p) in [("publish → received", &e2e), ("API 202 alone", &accepted)] {
        t.row([
            name.to_owned(),
            crate::report::ms(p.at(50.0)),
            crate::report::ms(p.at(99.0)),
            crate::report::ms(p.max()),
        ]);
    }
    t.print();
    if missed > 0 {
        println!("\n{missed} event(s) did not arrive within {PER_EVENT_DEADLINE:?}");
    }
    println!("\nload average at end: {}", load_average());
    s.stack.stop_workers();
    Ok(())
}
