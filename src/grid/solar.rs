//! Clear-sky PV output: the sun's position from Spencer's (1971) Fourier
//! series for declination and the equation of time, and the Haurwitz
//! (1945) clear-sky global horizontal irradiance,
//!
//! ```text
//!   GHI = 1098 · cos Z · exp(−0.057 / cos Z)  [W/m²]   (cos Z > 0)
//! ```
//!
//! which Reno, Hansen and Stein (Sandia SAND2012-2389) rank among the best
//! simple clear-sky models. A PV system's output is its peak power times
//! GHI / 1000 W/m², capped at 1: a horizontal array at standard test
//! conditions, without temperature derating.

use std::f64::consts::PI;

/// A site and calendar for clear-sky output.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClearSky {
    /// Latitude [deg], north positive.
    pub latitude_deg: f64,
    /// Longitude [deg], east positive.
    pub longitude_deg: f64,
    /// Offset of the simulation clock from UTC [h].
    pub utc_offset_h: f64,
    /// Day of the year (1–366) at simulation time zero.
    pub day_of_year: u16,
}

impl ClearSky {
    /// Cosine of the solar zenith angle at `t_s` seconds after midnight of
    /// day `day_of_year` (local clock).
    pub fn cos_zenith(&self, t_s: f64) -> f64 {
        let day = f64::from(self.day_of_year) + (t_s / 86_400.0).floor();
        let clock_h = (t_s / 3600.0).rem_euclid(24.0);
        let g = 2.0 * PI * (day - 1.0) / 365.0;
        let decl = 0.006_918 - 0.399_912 * g.cos() + 0.070_257 * g.sin()
            - 0.006_758 * (2.0 * g).cos()
            + 0.000_907 * (2.0 * g).sin()
            - 0.002_697 * (3.0 * g).cos()
            + 0.001_48 * (3.0 * g).sin();
        let eot_min = 229.18
            * (0.000_075 + 0.001_868 * g.cos()
                - 0.032_077 * g.sin()
                - 0.014_615 * (2.0 * g).cos()
                - 0.040_849 * (2.0 * g).sin());
        let solar_h = clock_h - self.utc_offset_h + self.longitude_deg / 15.0 + eot_min / 60.0;
        let hour_angle = (15.0 * (solar_h - 12.0)).to_radians();
        let lat = self.latitude_deg.to_radians();
        lat.sin() * decl.sin() + lat.cos() * decl.cos() * hour_angle.cos()
    }

    /// Haurwitz clear-sky global horizontal irradiance [W/m²].
    pub fn ghi_w_m2(&self, t_s: f64) -> f64 {
        let cz = self.cos_zenith(t_s);
        if cz <= 0.0 {
            0.0
        } else {
            1098.0 * cz * (-0.057 / cz).exp()
        }
    }

    /// Output as a share of peak power, in [0, 1].
    pub fn share(&self, t_s: f64) -> f64 {
        (self.ghi_w_m2(t_s) / 1000.0).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> ClearSky {
        ClearSky {
            latitude_deg: 52.0,
            longitude_deg: 0.0,
            utc_offset_h: 0.0,
            day_of_year: 172,
        }
    }

    #[test]
    fn midsummer_noon_at_52_north_matches_the_closed_form() {
        // Solar noon on 21 June: Z = φ − δ ≈ 52° − 23.44°; the equation of
        // time is under 2 min then, so clock noon is within 0.1° of it.
        let s = site();
        let noon = (0..=240)
            .map(|k| 11.0 * 3600.0 + k as f64 * 30.0)
            .max_by(|a, b| s.cos_zenith(*a).total_cmp(&s.cos_zenith(*b)))
            .unwrap();
        assert!(
            (noon - 12.0 * 3600.0).abs() <= 3.0 * 60.0,
            "noon at {noon} s"
        );
        let z = s.cos_zenith(noon).acos().to_degrees();
        assert!((z - (52.0 - 23.44)).abs() < 0.1, "zenith {z}°");
        let cz = (52.0f64 - 23.44).to_radians().cos();
        let ghi = 1098.0 * cz * (-0.057 / cz).exp();
        assert!((s.ghi_w_m2(noon) - ghi).abs() < 2.0, "{}", s.ghi_w_m2(noon));
    }

    #[test]
    fn night_is_dark_and_the_day_is_symmetric_about_solar_noon() {
        let s = site();
        assert_eq!(s.share(0.0), 0.0);
        assert_eq!(s.share(23.5 * 3600.0), 0.0);
        // Sunrise and sunset at 52° N in June: about 16.5 h of daylight.
        let lit = (0..1440)
            .filter(|m| s.share(*m as f64 * 60.0) > 0.0)
            .count();
        assert!((950..=1010).contains(&lit), "{lit} minutes of daylight");
        let noon = 12.0 * 3600.0 + 1.5 * 60.0; // clock time of solar noon
        for dh in [1.0, 3.0, 6.0] {
            let (a, b) = (s.share(noon - dh * 3600.0), s.share(noon + dh * 3600.0));
            assert!((a - b).abs() < 0.01, "{dh} h: {a} vs {b}");
        }
    }

    #[test]
    fn winter_days_are_short_and_low() {
        let w = ClearSky {
            day_of_year: 355,
            ..site()
        };
        let s = site();
        assert!(w.share(12.0 * 3600.0) < 0.5 * s.share(12.0 * 3600.0));
        let lit = (0..1440)
            .filter(|m| w.share(*m as f64 * 60.0) > 0.0)
            .count();
        assert!((440..=500).contains(&lit), "{lit} minutes");
    }
}
