//! Cities, networks and great-circle distance for the behaviour generator (and, later, features).
//!
//! The ASNs and address blocks are invented (plausible-looking, not real assignments); cities share
//! their country's providers, as national ISPs do.

/// A real city with its fixed UTC offset (standard time; daylight saving is ignored) and three
/// invented providers: `asns = [home broadband, business / office, mobile carrier]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct City {
    pub name: &'static str,
    /// ISO 3166-1 alpha-2.
    pub country: &'static str,
    pub lat: f64,
    pub lon: f64,
    pub utc_offset_min: i32,
    pub asns: [u32; 3],
}

const fn city(
    name: &'static str,
    country: &'static str,
    lat: f64,
    lon: f64,
    utc_offset_min: i32,
    asns: [u32; 3],
) -> City {
    City { name, country, lat, lon, utc_offset_min, asns }
}

const NO: [u32; 3] = [29_695, 39_832, 41_164];
const SE: [u32; 3] = [31_422, 8_473, 44_034];
const DK: [u32; 3] = [9_158, 3_308, 44_869];
const FI: [u32; 3] = [16_086, 1_759, 29_180];
const GB: [u32; 3] = [5_607, 2_856, 25_135];
const IE: [u32; 3] = [5_466, 15_502, 27_885];
const FR: [u32; 3] = [3_215, 12_322, 51_207];
const DE: [u32; 3] = [3_320, 8_881, 29_562];
const NL: [u32; 3] = [33_915, 1_136, 31_615];
const BE: [u32; 3] = [5_432, 6_848, 47_377];
const CH: [u32; 3] = [3_303, 6_730, 15_796];
const AT: [u32; 3] = [8_447, 1_853, 25_255];
const ES: [u32; 3] = [3_352, 12_479, 12_430];
const PT: [u32; 3] = [3_243, 12_353, 42_863];
const IT: [u32; 3] = [3_269, 12_874, 30_722];
const PL: [u32; 3] = [5_617, 12_741, 39_603];
const CZ: [u32; 3] = [5_610, 16_019, 13_036];
const TR: [u32; 3] = [9_121, 34_984, 16_135];
const IL: [u32; 3] = [8_551, 12_400, 21_450];
const AE: [u32; 3] = [5_384, 15_802, 57_187];
const ZA: [u32; 3] = [5_713, 3_741, 36_994];
const IN: [u32; 3] = [24_560, 9_498, 45_609];
const SG: [u32; 3] = [9_506, 7_473, 45_143];
const HK: [u32; 3] = [4_760, 9_269, 10_118];
const JP: [u32; 3] = [2_516, 17_676, 9_605];
const KR: [u32; 3] = [4_766, 9_318, 17_858];
const AU: [u32; 3] = [1_221, 7_545, 4_804];
const NZ: [u32; 3] = [9_500, 4_771, 4_648];
const US: [u32; 3] = [7_922, 701, 21_928];
const CA: [u32; 3] = [812, 577, 22_652];
const MX: [u32; 3] = [8_151, 28_548, 32_098];
const BR: [u32; 3] = [28_573, 18_881, 26_599];
const AR: [u32; 3] = [7_303, 10_318, 22_927];

/// The city table.
pub const CITIES: &[City] = &[
    city("Oslo", "NO", 59.9139, 10.7522, 60, NO),
    city("Stockholm", "SE", 59.3293, 18.0686, 60, SE),
    city("Copenhagen", "DK", 55.6761, 12.5683, 60, DK),
    city("Helsinki", "FI", 60.1699, 24.9384, 120, FI),
    city("London", "GB", 51.5074, -0.1278, 0, GB),
    city("Manchester", "GB", 53.4808, -2.2426, 0, GB),
    city("Dublin", "IE", 53.3498, -6.2603, 0, IE),
    city("Paris", "FR", 48.8566, 2.3522, 60, FR),
    city("Lyon", "FR", 45.7640, 4.8357, 60, FR),
    city("Berlin", "DE", 52.5200, 13.4050, 60, DE),
    city("Munich", "DE", 48.1351, 11.5820, 60, DE),
    city("Frankfurt", "DE", 50.1109, 8.6821, 60, DE),
    city("Amsterdam", "NL", 52.3676, 4.9041, 60, NL),
    city("Brussels", "BE", 50.8503, 4.3517, 60, BE),
    city("Zurich", "CH", 47.3769, 8.5417, 60, CH),
    city("Vienna", "AT", 48.2082, 16.3738, 60, AT),
    city("Madrid", "ES", 40.4168, -3.7038, 60, ES),
    city("Barcelona", "ES", 41.3874, 2.1686, 60, ES),
    city("Lisbon", "PT", 38.7223, -9.1393, 0, PT),
    city("Rome", "IT", 41.9028, 12.4964, 60, IT),
    city("Milan", "IT", 45.4642, 9.1900, 60, IT),
    city("Warsaw", "PL", 52.2297, 21.0122, 60, PL),
    city("Prague", "CZ", 50.0755, 14.4378, 60, CZ),
    city("Istanbul", "TR", 41.0082, 28.9784, 180, TR),
    city("Tel Aviv", "IL", 32.0853, 34.7818, 120, IL),
    city("Dubai", "AE", 25.2048, 55.2708, 240, AE),
    city("Johannesburg", "ZA", -26.2041, 28.0473, 120, ZA),
    city("Mumbai", "IN", 19.0760, 72.8777, 330, IN),
    city("Bangalore", "IN", 12.9716, 77.5946, 330, IN),
    city("Singapore", "SG", 1.3521, 103.8198, 480, SG),
    city("Hong Kong", "HK", 22.3193, 114.1694, 480, HK),
    city("Tokyo", "JP", 35.6762, 139.6503, 540, JP),
    city("Seoul", "KR", 37.5665, 126.9780, 540, KR),
    city("Sydney", "AU", -33.8688, 151.2093, 600, AU),
    city("Melbourne", "AU", -37.8136, 144.9631, 600, AU),
    city("Auckland", "NZ", -36.8485, 174.7633, 720, NZ),
    city("New York", "US", 40.7128, -74.0060, -300, US),
    city("Chicago", "US", 41.8781, -87.6298, -360, US),
    city("Austin", "US", 30.2672, -97.7431, -360, US),
    city("San Francisco", "US", 37.7749, -122.4194, -480, US),
    city("Seattle", "US", 47.6062, -122.3321, -480, US),
    city("Toronto", "CA", 43.6532, -79.3832, -300, CA),
    city("Mexico City", "MX", 19.4326, -99.1332, -360, MX),
    city("Sao Paulo", "BR", -23.5505, -46.6333, -180, BR),
    city("Buenos Aires", "AR", -34.6037, -58.3816, -180, AR),
];

/// A commercial VPN / corporate gateway exit: traffic appears to come from `city` via `asn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VpnExit {
    pub city: &'static str,
    pub asn: u32,
}

/// Data-centre exits used for VPN hops.
pub const VPN_EXITS: &[VpnExit] = &[
    VpnExit { city: "Amsterdam", asn: 211_870 },
    VpnExit { city: "Frankfurt", asn: 213_035 },
    VpnExit { city: "London", asn: 209_102 },
    VpnExit { city: "New York", asn: 396_982 },
    VpnExit { city: "Singapore", asn: 141_995 },
];

/// Index of a city in [`CITIES`] by name.
pub fn city_index(name: &str) -> Option<usize> {
    CITIES.iter().position(|c| c.name == name)
}

/// Mean Earth radius (IUGG), km.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Great-circle distance in km between two points given in degrees (haversine formula).
pub fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

/// SplitMix64 finaliser: a fixed, portable 64-bit mix for deriving stable identifiers.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Public first octets the invented IPv4 blocks are drawn from (no private or reserved ranges).
const FIRST_OCTETS: [u8; 24] =
    [5, 31, 37, 46, 62, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95];

/// The invented IPv4 /16 an ASN announces, as its first two octets. (The hash salt is chosen so
/// that the table's ASNs get distinct blocks; a test checks it.)
pub fn asn_ipv4_block(asn: u32) -> [u8; 2] {
    let h = mix64(u64::from(asn) ^ 1);
    [FIRST_OCTETS[(h % FIRST_OCTETS.len() as u64) as usize], (h >> 32) as u8]
}

/// The invented IPv6 /32 an ASN announces, as its first two 16-bit segments (inside 2a00::/12).
pub fn asn_ipv6_block(asn: u32) -> [u16; 2] {
    let h = mix64(u64::from(asn) ^ 0x6666);
    [0x2a00 | (h & 0x0f) as u16, (h >> 16) as u16]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn known_distances() {
        let (o, s) = (&CITIES[city_index("Oslo").unwrap()], &CITIES[city_index("Sydney").unwrap()]);
        let d = haversine_km(o.lat, o.lon, s.lat, s.lon);
        assert!((d - 15_949.4).abs() < 159.0, "Oslo-Sydney {d}");
        let (l, p) = (&CITIES[city_index("London").unwrap()], &CITIES[city_index("Paris").unwrap()]);
        let d = haversine_km(l.lat, l.lon, p.lat, p.lon);
        assert!((d - 343.6).abs() < 3.4, "London-Paris {d}");
        assert_eq!(haversine_km(10.0, 20.0, 10.0, 20.0), 0.0);
        let antipode = haversine_km(0.0, 0.0, 0.0, 180.0);
        assert!((antipode - std::f64::consts::PI * EARTH_RADIUS_KM).abs() < 1e-6);
    }

    #[test]
    fn table_is_well_formed() {
        assert!(CITIES.len() >= 40);
        let mut names = BTreeSet::new();
        for c in CITIES {
            assert!(names.insert(c.name), "duplicate {}", c.name);
            assert!(c.country.len() == 2 && c.country.bytes().all(|b| b.is_ascii_uppercase()));
            assert!((-90.0..=90.0).contains(&c.lat) && (-180.0..=180.0).contains(&c.lon));
            assert!(c.utc_offset_min % 30 == 0 && c.utc_offset_min.abs() <= 14 * 60);
        }
        for v in VPN_EXITS {
            assert!(city_index(v.city).is_some(), "{}", v.city);
        }
    }

    #[test]
    fn every_asn_gets_its_own_blocks() {
        let mut asns: BTreeSet<u32> = CITIES.iter().flat_map(|c| c.asns).collect();
        asns.extend(VPN_EXITS.iter().map(|v| v.asn));
        let v4: BTreeSet<[u8; 2]> = asns.iter().map(|a| asn_ipv4_block(*a)).collect();
        let v6: BTreeSet<[u16; 2]> = asns.iter().map(|a| asn_ipv6_block(*a)).collect();
        assert_eq!((v4.len(), v6.len()), (asns.len(), asns.len()));
        // Countries share providers; different countries never do.
        let per_country: BTreeSet<(&str, [u32; 3])> = CITIES.iter().map(|c| (c.country, c.asns)).collect();
        let countries: BTreeSet<&str> = CITIES.iter().map(|c| c.country).collect();
        assert_eq!(per_country.len(), countries.len());
        assert_eq!(asns.len(), countries.len() * 3 + VPN_EXITS.len());
    }
}
