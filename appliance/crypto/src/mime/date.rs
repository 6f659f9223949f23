//! Calendar dates from Unix time, in UTC, for the date fields Postern writes (RFC 5322
//! `Date`/`Received` and the CMS signing time).

use std::time::{SystemTime, UNIX_EPOCH};

/// A moment broken into UTC calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u64,
    pub minute: u64,
    pub second: u64,
    /// 0 = Monday … 6 = Sunday.
    pub weekday: u64,
}

impl Utc {
    pub fn from(t: SystemTime) -> Utc {
        let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let days = secs / 86_400;
        let rem = secs % 86_400;
        let (year, month, day) = civil_from_days(i64::try_from(days).unwrap_or(i64::MAX / 2));
        Utc {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
            // 1970-01-01 was a Thursday.
            weekday: (days + 3) % 7,
        }
    }

    /// `Mon, 23 Nov 2026 09:40:00 +0000` (RFC 5322 §3.3).
    pub fn rfc5322(&self) -> String {
        const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        format!(
            "{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
            DAYS[self.weekday as usize],
            self.day,
            MONTHS[(self.month.clamp(1, 12) - 1) as usize],
            self.year,
            self.hour,
            self.minute,
            self.second
        )
    }
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn calendar_fields() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_780), (2026, 11, 23));
        let t = UNIX_EPOCH + Duration::from_secs(1_795_426_800); // 2026-11-23 09:40:00
        let u = Utc::from(t);
        assert_eq!(
            (u.year, u.month, u.day, u.hour, u.minute),
            (2026, 11, 23, 9, 40)
        );
        assert_eq!(u.rfc5322(), "Mon, 23 Nov 2026 09:40:00 +0000");
        assert_eq!(
            Utc::from(UNIX_EPOCH).rfc5322(),
            "Thu, 01 Jan 1970 00:00:00 +0000"
        );
    }
}
