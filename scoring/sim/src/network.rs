//! The addresses a simulated user's traffic comes from: home broadband (fixed per user), the
//! office (a /24 shared with colleagues), a mobile carrier (changing), guest networks and a VPN.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::population::SimUser;
use scoring::geo::{asn_ipv4_block, asn_ipv6_block, city_index, mix64, CITIES, VPN_EXITS};

impl SimUser {
    fn stable(&self, salt: u64) -> u64 {
        mix64(self.seed ^ mix64(self.index as u64 ^ mix64(salt)))
    }

    /// The fixed home-broadband address (IPv4) of this user in `city`.
    pub fn home_ip(&self, city: usize) -> (u32, IpAddr) {
        let asn = CITIES[city].asns[0];
        let h = self.stable(1000 + city as u64);
        (asn, v4(asn, (h >> 8) as u8, 1 + (h % 253) as u8))
    }

    /// The office address: a /24 shared by everyone in the city's office, host fixed per user.
    pub fn office_ip(&self, city: usize) -> (u32, IpAddr) {
        let asn = CITIES[city].asns[1];
        let net = mix64(city as u64 ^ 0x0ff1ce) as u8;
        (asn, v4(asn, net, 10 + (self.stable(2000) % 240) as u8))
    }

    /// The user's VPN exit address: one of a few per exit.
    pub fn vpn_ip(&self) -> (usize, u32, IpAddr) {
        let exit = VPN_EXITS[self.vpn_exit];
        let city = city_index(exit.city).expect("VPN exit city is in the table");
        (city, exit.asn, v4(exit.asn, (self.stable(3000) % 4) as u8, 1 + (self.stable(3001) % 8) as u8))
    }

    /// A mobile-carrier address (carrier-grade NAT: it changes from session to session, within
    /// the carrier's 16 regional pools of the city).
    pub(crate) fn mobile_ip(&self, city: usize, device: usize, rng: &mut ChaCha8Rng) -> (u32, IpAddr) {
        let asn = CITIES[city].asns[2];
        let pool = (mix64(city as u64 ^ 0x3b) as u16).wrapping_add(rng.gen_range(0..16));
        if self.devices[device].ipv6 {
            let [a, b] = asn_ipv6_block(asn);
            let ip = Ipv6Addr::new(a, b, pool, rng.gen(), rng.gen(), rng.gen(), rng.gen(), rng.gen());
            (asn, IpAddr::V6(ip))
        } else {
            (asn, v4(asn, pool as u8, rng.gen_range(1..=254)))
        }
    }

    /// A hotel or guest network in `city`: a random broadband address.
    pub(crate) fn guest_ip(city: usize, rng: &mut ChaCha8Rng) -> (u32, IpAddr) {
        let asn = CITIES[city].asns[0];
        (asn, v4(asn, rng.gen(), rng.gen_range(1..=254)))
    }
}

pub(crate) fn v4(asn: u32, third: u8, fourth: u8) -> IpAddr {
    let [a, b] = asn_ipv4_block(asn);
    IpAddr::V4(Ipv4Addr::new(a, b, third, fourth))
}
