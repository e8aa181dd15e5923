//! The Lua scripts behind every multi-key state change, loaded once.

use std::sync::LazyLock;

use redis::Script;

macro_rules! script {
    ($name:ident, $file:literal) => {
        pub(crate) static $name: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!(concat!("lua/", $file))));
    };
}

script!(ENQUEUE, "enqueue.lua");
script!(CLAIM, "claim.lua");
script!(ACK, "ack.lua");
script!(RENEW, "renew.lua");
script!(RELEASE, "release.lua");
script!(DEAD_LETTER, "dead_letter.lua");
script!(REDELIVER, "redeliver.lua");
