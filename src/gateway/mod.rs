//! The gateway and the cloud. The aggregator groups LMU reports into
//! rounds by LMU id ([`aggregator`]); rounds wait in a store-and-forward
//! buffer bounded in bytes ([`buffer`]) for the MQTT session ([`mqtt`]),
//! which runs over the 3G/4G link ([`cellular`]) to the cloud's broker and
//! store ([`cloud`]). Commands come back the same way. [`schema`] is the
//! JSON both the model and the live bridge publish.

pub mod aggregator;
pub mod buffer;
pub mod cellular;
pub mod cloud;
pub mod mqtt;
pub mod schema;
