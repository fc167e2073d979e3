//! One lazily connected, multiplexed gRPC channel per node address.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

#[derive(Default)]
pub(crate) struct Channels {
    map: Mutex<HashMap<String, Channel>>,
}

impl Channels {
    pub(crate) fn get(&self, addr: &str) -> Result<Channel, tonic::transport::Error> {
        let mut map = self.map.lock().expect("channels lock");
        if let Some(c) = map.get(addr) {
            return Ok(c.clone());
        }
        let c = Endpoint::from_shared(format!("http://{addr}"))?
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .connect_lazy();
        map.insert(addr.to_string(), c.clone());
        Ok(c)
    }
}
