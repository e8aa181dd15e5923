//! The Lua scripts behind every multi-key state change, loaded once. Each is the shared
//! prelude (`lua/prelude.lua`: the partition's key layout, the endpoint refresh, Redis's
//! clock) followed by its own body.

use std::sync::LazyLock;

use redis::Script;

macro_rules! script {
    ($name:ident, $file:literal) => {
        pub(crate) static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(concat!(
                include_str!("lua/prelude.lua"),
                "\n",
                include_str!(concat!("lua/", $file))
            ))
        });
    };
    // With a shared function of its own between the prelude and the body.
    ($name:ident, $shared:literal, $file:literal) => {
        pub(crate) static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(concat!(
                include_str!("lua/prelude.lua"),
                "\n",
                include_str!(concat!("lua/", $shared)),
                "\n",
                include_str!(concat!("lua/", $file))
            ))
        });
    };
}

script!(ENQUEUE, "enqueue.lua");
script!(CLAIM, "claim.lua");
script!(ACK, "ack_fn.lua", "ack.lua");
script!(ACK_MANY, "ack_fn.lua", "ack_many.lua");
script!(RENEW, "renew.lua");
script!(RELEASE, "release.lua");
script!(DEAD_LETTER, "dead_letter.lua");
script!(REDELIVER, "redeliver.lua");
script!(CONFIGURE, "configure.lua");
script!(MIGRATE, "migrate.lua");

/// Clears a partition's signal when its ring is empty, or returns the ring's head (no
/// prelude: it touches two keys).
pub(crate) static QUIET: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/quiet.lua")));
