//! Calendar arithmetic on unix epoch milliseconds, in integers only (deterministic, no time zone
//! database: callers pass fixed UTC offsets).

pub const MS_PER_MINUTE: i64 = 60_000;
pub const MS_PER_HOUR: i64 = 3_600_000;
pub const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 (negative before it).
pub fn day_number(time_ms: i64) -> i64 {
    time_ms.div_euclid(MS_PER_DAY)
}

/// Weekday of a day number, Monday = 0 … Sunday = 6 (1970-01-01 was a Thursday).
pub fn weekday(day: i64) -> u8 {
    (day + 3).rem_euclid(7) as u8
}

/// Hour of the day, 0–23.
pub fn hour_of_day(time_ms: i64) -> u8 {
    (time_ms.rem_euclid(MS_PER_DAY) / MS_PER_HOUR) as u8
}

/// Index into a 168-bin hour-of-week histogram: weekday (Monday = 0) × 24 + hour, in UTC.
pub fn hour_of_week(time_ms: i64) -> usize {
    weekday(day_number(time_ms)) as usize * 24 + hour_of_day(time_ms) as usize
}

/// (year, month 1–12, day 1–31) of a day number, proleptic Gregorian (H. Hinnant's algorithm).
pub fn civil_from_days(day: i64) -> (i64, u8, u8) {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Number of days in a month of a year.
pub fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        // 2026-11-23T09:30:00Z is a Monday.
        let t = 1_795_426_200_000;
        assert_eq!(civil_from_days(day_number(t)), (2026, 11, 23));
        assert_eq!(weekday(day_number(t)), 0);
        assert_eq!(hour_of_week(t), 9);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(weekday(0), 3);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(day_number(951_782_400_000)), (2000, 2, 29));
        // Sunday 23:59 is the last bin.
        assert_eq!(hour_of_week(1_767_571_200_000 - 60_000), 167);
        assert_eq!((days_in_month(2024, 2), days_in_month(2100, 2), days_in_month(2026, 4)), (29, 28, 30));
    }
}
