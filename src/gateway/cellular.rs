//! The gateway's 3G/4G link: latency, bandwidth, loss, outages, and the
//! connection set-up after an outage.
//!
//! A message of `n` bytes queued at `now` waits for the link to be free
//! and connected, takes `8·n / rate` on the air, then a one-way latency
//! drawn from a log-normal distribution (median and log-σ per profile), and
//! is lost with the profile's probability (the MQTT layer above recovers at
//! QoS 1). During an outage nothing is sent; when it ends the modem needs
//! the profile's set-up time (re-attach and bearer set-up) before the first
//! byte.
//!
//! Default profiles: peak uplink rates from 3GPP (LTE UE category 1:
//! 5.16 Mbit/s, TS 36.306; HSUPA category 6: 5.76 Mbit/s, Release 6), of
//! which a gateway in the field sees about half; one-way latency medians of
//! 30 ms (4G) and 80 ms (3G), typical of the round-trip times that mobile
//! network surveys report (roughly 50–70 ms for 4G and 100–200 ms for 3G);
//! packet loss of 0.5 % and 1 %; set-up after an outage of 2 s (4G) and
//! 5 s (3G). They are settings, not measurements of a particular network.

use rand::RngExt;
use rand_distr::{Distribution, LogNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::kernel::rng::stream;
use crate::kernel::{SimDuration, SimTime};

/// A cellular technology's parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CellularProfile {
    /// Median one-way latency.
    pub latency_median: SimDuration,
    /// Standard deviation of the latency's natural log.
    pub latency_sigma_ln: f64,
    /// Effective uplink rate [bit/s].
    pub uplink_bps: f64,
    /// Probability that a message is lost.
    pub loss: f64,
    /// Connection set-up after an outage.
    pub setup: SimDuration,
}

impl CellularProfile {
    /// 4G (LTE category 1).
    pub fn lte() -> CellularProfile {
        CellularProfile {
            latency_median: SimDuration::from_millis(30).expect("fits"),
            latency_sigma_ln: 0.35,
            uplink_bps: 2.5e6,
            loss: 0.005,
            setup: SimDuration::from_secs(2).expect("fits"),
        }
    }

    /// 3G (HSUPA category 6).
    pub fn umts() -> CellularProfile {
        CellularProfile {
            latency_median: SimDuration::from_millis(80).expect("fits"),
            latency_sigma_ln: 0.45,
            uplink_bps: 2.8e6,
            loss: 0.01,
            setup: SimDuration::from_secs(5).expect("fits"),
        }
    }
}

/// Why a message did not get through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkError {
    /// The link is in an outage.
    Down,
    /// The message was lost.
    Lost,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CellularStats {
    /// Messages delivered.
    pub delivered: u64,
    /// Messages lost.
    pub lost: u64,
    /// Messages refused during outages.
    pub refused: u64,
    /// Outages begun.
    pub outages: u64,
}

/// One direction of the cellular link.
#[derive(Clone, Debug)]
pub struct Cellular {
    profile: CellularProfile,
    latency: LogNormal<f64>,
    rng: Xoshiro256PlusPlus,
    up: bool,
    ready_at: SimTime,
    free_at: SimTime,
    stats: CellularStats,
}

impl Cellular {
    /// A connected link with its own random stream.
    pub fn new(profile: CellularProfile, seed: u64, id: u64) -> Cellular {
        let median_s = profile.latency_median.as_secs_f64().max(1e-9);
        Cellular {
            latency: LogNormal::new(median_s.ln(), profile.latency_sigma_ln.max(0.0))
                .expect("σ ≥ 0 and a finite median"),
            rng: stream(seed, "cellular", id, "link"),
            profile,
            up: true,
            ready_at: SimTime::ZERO,
            free_at: SimTime::ZERO,
            stats: CellularStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> CellularStats {
        self.stats
    }

    /// Whether the link is up (it may still be setting up).
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Starts or ends an outage at `now`.
    pub fn set_outage(&mut self, now: SimTime, outage: bool) {
        if outage && self.up {
            self.stats.outages += 1;
        }
        if !outage && !self.up {
            self.ready_at = now.saturating_add(self.profile.setup);
        }
        self.up = !outage;
    }

    /// Sends `bytes` at `now`: when it arrives, or why it does not.
    pub fn send(&mut self, now: SimTime, bytes: usize) -> Result<SimTime, LinkError> {
        if !self.up {
            self.stats.refused += 1;
            return Err(LinkError::Down);
        }
        let start = now.max(self.ready_at).max(self.free_at);
        let air_ns = (bytes as f64 * 8.0 / self.profile.uplink_bps * 1e9).ceil() as u64;
        let sent = start.saturating_add(SimDuration::from_nanos(air_ns));
        self.free_at = sent;
        let latency_ns = (self.latency.sample(&mut self.rng) * 1e9).round() as u64;
        if self.rng.random::<f64>() < self.profile.loss {
            self.stats.lost += 1;
            return Err(LinkError::Lost);
        }
        self.stats.delivered += 1;
        Ok(sent.saturating_add(SimDuration::from_nanos(latency_ns)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: f64) -> SimTime {
        SimTime::from_nanos((x * 1e9) as u64)
    }

    #[test]
    fn latency_has_the_profile_median_and_loss_its_rate() {
        for p in [CellularProfile::lte(), CellularProfile::umts()] {
            let mut c = Cellular::new(p, 1, 0);
            let mut lat = Vec::new();
            let mut lost = 0;
            for k in 0..20_000u64 {
                // Spaced far apart: no queueing.
                let now = s(k as f64);
                match c.send(now, 10) {
                    Ok(t) => lat.push(t.saturating_since(now).as_secs_f64()),
                    Err(LinkError::Lost) => lost += 1,
                    Err(LinkError::Down) => unreachable!(),
                }
            }
            lat.sort_by(f64::total_cmp);
            let median = lat[lat.len() / 2];
            let want = p.latency_median.as_secs_f64();
            // Tolerance 3 % (the sample median's error is about 1 %).
            assert!((median - want).abs() < 0.03 * want, "{median} vs {want}");
            let rate = f64::from(lost) / 20_000.0;
            // Binomial: 5 standard errors.
            let se = (p.loss * (1.0 - p.loss) / 20_000.0).sqrt();
            assert!((rate - p.loss).abs() < 5.0 * se, "{rate}");
        }
    }

    #[test]
    fn big_messages_queue_at_the_uplink_rate() {
        let p = CellularProfile {
            latency_sigma_ln: 0.0,
            loss: 0.0,
            ..CellularProfile::lte()
        };
        let mut c = Cellular::new(p, 1, 0);
        // 1 MB at 2.5 Mbit/s: 3.2 s on the air, then 30 ms.
        let a = c.send(SimTime::ZERO, 1_000_000).unwrap();
        assert!((a.as_secs_f64() - 3.23).abs() < 1e-6, "{a}");
        // The next one queues behind it.
        let b = c.send(SimTime::ZERO, 1_000_000).unwrap();
        assert!((b.as_secs_f64() - 6.43).abs() < 1e-6, "{b}");
    }

    #[test]
    fn an_outage_refuses_and_the_link_then_needs_its_setup_time() {
        let p = CellularProfile {
            latency_sigma_ln: 0.0,
            loss: 0.0,
            ..CellularProfile::umts()
        };
        let mut c = Cellular::new(p, 1, 0);
        c.set_outage(s(10.0), true);
        assert_eq!(c.send(s(20.0), 100), Err(LinkError::Down));
        c.set_outage(s(3600.0), false);
        let t = c.send(s(3600.0), 100).unwrap();
        // 5 s of set-up, then the message.
        assert!(t >= s(3605.08), "{t}");
        assert_eq!((c.stats().outages, c.stats().refused), (1, 1));
    }
}
