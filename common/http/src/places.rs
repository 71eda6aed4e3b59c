//! Places for work a client holds for a while (a connection, a CSV export, a log search or
//! stream, a picture grabbed from a camera): at most so many over all clients, and at most so
//! many per client address, so one client of a LAN cannot take every place and keep the
//! others (the page, the watchdog, another operator) out.
//!
//! [`ClientPlaces`] counts what each address holds; [`Places`] adds the cap over all clients.
//! A place is given back when it is dropped, so it can be moved into whatever does the work
//! (a task that outlives its request) and is freed however that ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What each client address holds.
#[derive(Debug, Default)]
pub struct ClientPlaces(Mutex<HashMap<IpAddr, usize>>);

/// One of a client's places; given back when dropped.
#[derive(Debug)]
pub struct ClientPlace {
    clients: Arc<ClientPlaces>,
    ip: IpAddr,
}

impl ClientPlaces {
    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for `ip`, unless it holds `max` already.
    pub fn claim(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<ClientPlace> {
        let mut map = self.lock();
        let held = map.entry(ip).or_insert(0);
        if *held >= max {
            if *held == 0 {
                map.remove(&ip);
            }
            return None;
        }
        *held += 1;
        Some(ClientPlace { clients: Arc::clone(self), ip })
    }

    /// The places `ip` holds now.
    pub fn held(&self, ip: IpAddr) -> usize {
        self.lock().get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for ClientPlace {
    fn drop(&mut self) {
        let mut map = self.clients.lock();
        if let Some(held) = map.get_mut(&self.ip) {
            *held -= 1;
            if *held == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Why [`Places::claim`] gave no place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Full {
    /// Every place over all clients is taken.
    All,
    /// The client holds as many as one client may.
    Client,
}

/// At most `total` places over all clients and `per_client` per client address.
#[derive(Debug)]
pub struct Places {
    all: Arc<Semaphore>,
    clients: Arc<ClientPlaces>,
    total: usize,
    per_client: usize,
}

/// A place of [`Places`]: the client's and one of all; both given back when dropped.
#[derive(Debug)]
pub struct Place {
    _client: ClientPlace,
    _all: OwnedSemaphorePermit,
}

impl Places {
    pub fn new(total: usize, per_client: usize) -> Places {
        Places { all: Arc::new(Semaphore::new(total)), clients: Arc::default(), total, per_client }
    }

    /// A place for the client at `ip`: refused when it holds its share already (whether or
    /// not others are free), or when every place is taken.
    pub fn claim(&self, ip: IpAddr) -> Result<Place, Full> {
        let client = self.clients.claim(ip, self.per_client).ok_or(Full::Client)?;
        let all = Arc::clone(&self.all).try_acquire_owned().map_err(|_| Full::All)?;
        Ok(Place { _client: client, _all: all })
    }

    /// The most places over all clients.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The most places one client may hold.
    pub fn per_client(&self) -> usize {
        self.per_client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_share_and_no_more_and_others_get_the_rest() {
        let ip = |last: u8| IpAddr::from([127, 0, 0, last]);
        let places = Places::new(3, 2);
        let first = places.claim(ip(2)).unwrap();
        let second = places.claim(ip(2)).unwrap();
        assert_eq!(places.claim(ip(2)).unwrap_err(), Full::Client, "a third for the same client");
        let other = places.claim(ip(3)).unwrap();
        assert_eq!(places.claim(ip(4)).unwrap_err(), Full::All, "all three taken");
        // A refusal for want of any place keeps none of the client's own.
        assert_eq!(places.clients.held(ip(4)), 0);
        assert_eq!(places.clients.held(ip(2)), 2);
        drop(first);
        assert_eq!(places.clients.held(ip(2)), 1);
        let fourth = places.claim(ip(4)).expect("the place given back");
        drop((second, other, fourth));
        assert!(places.clients.lock().is_empty(), "nothing left behind");
    }
}
