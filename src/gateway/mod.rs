//! The gateway and the cloud. So far: the aggregator that groups LMU
//! reports into rounds by LMU id ([`aggregator`]). The cellular uplink,
//! the MQTT session, the cloud store and the live broker bridge follow.

pub mod aggregator;
