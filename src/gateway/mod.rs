//! The gateway and the cloud. So far: the aggregator that groups LMU
//! reports into rounds by LMU id ([`aggregator`]) and the 3G/4G link
//! ([`cellular`]). The MQTT session, the cloud store, the wiring into the
//! run and the live broker bridge follow.

pub mod aggregator;
pub mod cellular;
