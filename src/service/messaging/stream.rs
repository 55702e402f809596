//! The real-time side of messaging: the in-process [`Hub`] that wakes a device's open
//! streams when its event log grows, and the stream itself, which reads the log from
//! SQLite. The log is the truth and the hub only a doorbell: a wake-up that arrives
//! while a stream is reading is kept (a `watch` channel remembers it), and a stream that
//! was not open reads what it missed from the log when it resumes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::watch;

use crate::ids::{DeviceId, OrgId, UserId};

/// Events one read of the log takes: what a stream buffers at most.
pub const BATCH: u32 = 100;
/// How often an idle stream re-checks that its caller may still read (a revoked session
/// or key, a removed membership, a suspended organization) even when nothing wakes it:
/// the longest such a stream outlives what ended its right. One indexed read per open
/// stream each time.
pub const RECHECK: Duration = Duration::from_secs(5);

/// Wakes open streams; counts them against [`super::limits`]' caps.
#[derive(Clone, Default)]
pub struct Hub {
    inner: Arc<Mutex<HubState>>,
}

#[derive(Default)]
struct HubState {
    devices: HashMap<DeviceId, DeviceSlot>,
    users: HashMap<(OrgId, UserId), usize>,
    closed: bool,
}

struct DeviceSlot {
    bell: watch::Sender<u64>,
    open: usize,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

/// Why a stream could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenRefused {
    TooManyForDevice,
    TooManyForUser,
    ShuttingDown,
}

/// One open stream's place in the hub; dropping it frees the place.
pub struct StreamSlot {
    hub: Hub,
    org: OrgId,
    user: UserId,
    device: DeviceId,
    pub bell: watch::Receiver<u64>,
}

impl Hub {
    /// Takes a place for one more stream of `device`.
    pub fn open(
        &self,
        org: OrgId,
        user: UserId,
        device: DeviceId,
    ) -> Result<StreamSlot, OpenRefused> {
        let mut state = self.inner.lock().expect("hub lock");
        if state.closed {
            return Err(OpenRefused::ShuttingDown);
        }
        let user_open = state.users.get(&(org, user)).copied().unwrap_or(0);
        if user_open >= super::limits::MAX_STREAMS_PER_USER {
            return Err(OpenRefused::TooManyForUser);
        }
        let slot = state.devices.entry(device).or_insert_with(|| DeviceSlot {
            bell: watch::channel(0).0,
            open: 0,
        });
        if slot.open >= super::limits::MAX_STREAMS_PER_DEVICE {
            return Err(OpenRefused::TooManyForDevice);
        }
        slot.open += 1;
        let bell = slot.bell.subscribe();
        *state.users.entry((org, user)).or_insert(0) += 1;
        Ok(StreamSlot {
            hub: self.clone(),
            org,
            user,
            device,
            bell,
        })
    }

    /// Rings the bell of each device (after the transaction that wrote their events
    /// committed).
    pub fn wake(&self, devices: &[DeviceId]) {
        let state = self.inner.lock().expect("hub lock");
        for device in devices {
            if let Some(slot) = state.devices.get(device) {
                slot.bell.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }

    /// Ends every open stream of a removed device at once (their bells close).
    pub fn close_device(&self, device: DeviceId) {
        let mut state = self.inner.lock().expect("hub lock");
        if let Some(slot) = state.devices.get_mut(&device) {
            // A new sender: the receivers of the old one see it closed.
            slot.bell = watch::channel(0).0;
        }
    }

    /// Whether any device of the user in `org` has a stream open (so it needs no
    /// notification for a new message).
    pub fn user_streaming(&self, org: OrgId, user: UserId) -> bool {
        let state = self.inner.lock().expect("hub lock");
        state.users.get(&(org, user)).is_some_and(|n| *n > 0)
    }

    /// Ends every stream and refuses new ones: the server is shutting down.
    pub fn close_all(&self) {
        let mut state = self.inner.lock().expect("hub lock");
        state.closed = true;
        for slot in state.devices.values_mut() {
            slot.bell = watch::channel(0).0;
        }
    }

    fn release(&self, org: OrgId, user: UserId, device: DeviceId) {
        let mut state = self.inner.lock().expect("hub lock");
        if let Some(slot) = state.devices.get_mut(&device) {
            slot.open = slot.open.saturating_sub(1);
            if slot.open == 0 {
                state.devices.remove(&device);
            }
        }
        if let Some(n) = state.users.get_mut(&(org, user)) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.users.remove(&(org, user));
            }
        }
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.hub.release(self.org, self.user, self.device);
    }
}

/// One event as a stream sends it: the device's sequence number (the SSE `id`), its
/// type and its data (for messages, their current state with this device's envelope).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEvent {
    pub seq: i64,
    pub event_type: String,
    pub data: serde_json::Value,
}

/// What one read of the log found.
pub enum Batch {
    Events(Vec<StreamEvent>),
    /// The device or the caller's right to read is gone: the stream ends.
    End,
}

/// A stream over a device's log from `seq` on: reads a batch with `read_batch`, sends it,
/// and waits for the bell (or [`RECHECK`]) when the log has nothing more.
pub fn device_stream<F, Fut>(
    slot: StreamSlot,
    seq: i64,
    read_batch: F,
) -> impl Stream<Item = StreamEvent> + Send + 'static
where
    F: Fn(i64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Batch> + Send + 'static,
{
    struct State<F> {
        slot: StreamSlot,
        seq: i64,
        buffer: VecDeque<StreamEvent>,
        read_batch: F,
    }
    futures_util::stream::unfold(
        State {
            slot,
            seq,
            buffer: VecDeque::new(),
            read_batch,
        },
        |mut state| async move {
            loop {
                if let Some(event) = state.buffer.pop_front() {
                    return Some((event, state));
                }
                // Mark the bell seen before reading: a ring during the read is kept.
                state.slot.bell.mark_unchanged();
                match (state.read_batch)(state.seq).await {
                    Batch::End => return None,
                    Batch::Events(events) if !events.is_empty() => {
                        state.seq = events.last().map_or(state.seq, |e| e.seq);
                        state.buffer.extend(events);
                    }
                    Batch::Events(_) => {
                        tokio::select! {
                            rung = state.slot.bell.changed() => {
                                if rung.is_err() {
                                    return None;
                                }
                            }
                            _ = tokio::time::sleep(RECHECK) => {}
                        }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hub_caps_streams_and_frees_places() {
        let hub = Hub::default();
        let (org, user, device) = (OrgId::new(), UserId::new(), DeviceId::new());
        let slots: Vec<_> = (0..super::super::limits::MAX_STREAMS_PER_DEVICE)
            .map(|_| hub.open(org, user, device).unwrap())
            .collect();
        assert!(hub.user_streaming(org, user));
        assert_eq!(
            hub.open(org, user, device).err(),
            Some(OpenRefused::TooManyForDevice)
        );
        drop(slots);
        assert!(!hub.user_streaming(org, user));
        assert!(hub.open(org, user, device).is_ok());
    }

    #[tokio::test]
    async fn a_ring_while_reading_is_not_lost_and_closing_ends_the_wait() {
        let hub = Hub::default();
        let (org, user, device) = (OrgId::new(), UserId::new(), DeviceId::new());
        let mut slot = hub.open(org, user, device).unwrap();
        slot.bell.mark_unchanged();
        hub.wake(&[device]);
        // The ring happened before the wait began, and is still seen.
        tokio::time::timeout(Duration::from_secs(1), slot.bell.changed())
            .await
            .unwrap()
            .unwrap();
        hub.close_device(device);
        let closed = tokio::time::timeout(Duration::from_secs(1), slot.bell.changed())
            .await
            .unwrap();
        assert!(closed.is_err());
    }
}
