//! Leader election on a `coordination.k8s.io/v1` Lease, so two operator replicas never act at once.
//!
//! Expiry is judged by this process's own clock: a holder is presumed alive until the Lease
//! record has stayed unchanged for a whole lease duration *as observed locally*, so clock skew
//! between nodes cannot make two replicas lead at once (client-go does the same).
//!
//! Leader fencing: the leader may act only until `valid_until`, the *start* of its last
//! successful renewal plus the renew deadline (10 s, below the 15 s lease), on the monotonic
//! clock. A standby starts its 15 s count when it first sees that renewal, which is after the
//! renewal started, so this replica's validity ends at least `lease - renew_deadline` (5 s)
//! before any other replica can acquire. Every renewal request is bounded by `valid_until`
//! (a request stuck on a half-open connection cannot outlive it), and every member-changing
//! write checks [`Leadership::ensure_leading`] immediately before it is sent: a process paused
//! (SIGSTOP, a stalled VM) past its validity resumes with the monotonic clock advanced, so its
//! next write is refused before anything lands, and [`Elector::hold`] returns so the process
//! exits.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

/// Timing of the election.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// How long a lease is valid without renewal.
    pub lease: Duration,
    /// How often the leader renews, and how often a candidate retries.
    pub retry: Duration,
    /// How long after the start of its last successful renewal the leader may still act; it
    /// steps down when it could not renew within it (must be below `lease`).
    pub renew_deadline: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(15),
            retry: Duration::from_secs(2),
            renew_deadline: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("lost the lease: could not renew it for {0:?}")]
    Lost(Duration),
    #[error("the lease was taken over by {0}")]
    TakenOver(String),
}

impl LeaderError {
    /// The stable reason, for the `mesos_operator_leadership_lost_total` metric.
    pub fn reason(&self) -> &'static str {
        match self {
            LeaderError::Lost(_) => "renew-deadline",
            LeaderError::TakenOver(_) => "taken-over",
        }
    }
}

/// Why this replica may not act now.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotLeading {
    #[error("this replica does not hold the leader Lease")]
    NotHeld,
    #[error("this replica's leadership lapsed {0:?} ago (no renewal within the renew deadline)")]
    Lapsed(Duration),
}

/// Whether this replica may make member-changing writes now: a cheap, shared view of the
/// elector's validity. Cloned into every controller's context.
#[derive(Clone, Debug)]
pub struct Leadership(Option<Arc<Mutex<Option<Instant>>>>);

impl Leadership {
    /// Always leading: a single replica run with `--no-leader-election`.
    pub fn unconditional() -> Self {
        Self(None)
    }

    /// Not leading until an [`Elector`] sharing it acquires the lease.
    pub fn elected() -> Self {
        Self(Some(Arc::default()))
    }

    /// Ok while this replica holds the lease within its renew deadline. Call it immediately
    /// before every write that changes members.
    pub fn ensure_leading(&self) -> Result<(), NotLeading> {
        let Some(until) = self.valid_until() else {
            return match self.0 {
                None => Ok(()),
                Some(_) => Err(NotLeading::NotHeld),
            };
        };
        let now = Instant::now();
        if now < until {
            Ok(())
        } else {
            Err(NotLeading::Lapsed(now - until))
        }
    }

    /// The end of this replica's validity (`None`: unconditional, or not held).
    fn valid_until(&self) -> Option<Instant> {
        let cell = self.0.as_ref()?;
        *cell.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, until: Option<Instant>) {
        if let Some(cell) = &self.0 {
            *cell.lock().unwrap_or_else(|p| p.into_inner()) = until;
        }
    }
}

/// What identifies one renewal of a Lease: its holder and renew time.
type Record = (Option<String>, Option<MicroTime>);

/// One candidate for one Lease.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: Timing,
    /// The last record seen and when this process first saw it.
    observed: Option<(Record, Instant)>,
    leadership: Leadership,
}

impl Elector {
    pub fn new(
        api: Api<Lease>,
        name: impl Into<String>,
        identity: impl Into<String>,
        timing: Timing,
    ) -> Self {
        Self {
            api,
            name: name.into(),
            identity: identity.into(),
            timing,
            observed: None,
            leadership: Leadership::elected(),
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The guard the controllers check before every member-changing write.
    pub fn leadership(&self) -> Leadership {
        self.leadership.clone()
    }

    /// Waits until this candidate holds the lease.
    pub async fn acquire(&mut self) {
        loop {
            let started = Instant::now();
            // A candidate's round is bounded too: a stuck request must not hold up the retry.
            let round =
                tokio::time::timeout(self.timing.renew_deadline, self.try_acquire_or_renew());
            match round.await {
                Ok(Ok(true)) => {
                    self.leadership
                        .set(Some(started + self.timing.renew_deadline));
                    tracing::info!(lease = %self.name, identity = %self.identity, "acquired leadership");
                    return;
                }
                Ok(Ok(false)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(lease = %self.name, error = %e, "lease election failed; retrying")
                }
                Err(_) => {
                    tracing::warn!(lease = %self.name, "lease election timed out; retrying")
                }
            }
            tokio::time::sleep(self.timing.retry).await;
        }
    }

    /// Renews the lease until it is lost; returns why. Returns no later than the end of this
    /// replica's validity, whatever the API server does, and revokes the [`Leadership`] first.
    pub async fn hold(&mut self) -> LeaderError {
        let lost = self.renew_until_lost().await;
        self.leadership.set(None);
        tracing::error!(lease = %self.name, identity = %self.identity, error = %lost, "lost leadership: stopping at once");
        lost
    }

    async fn renew_until_lost(&mut self) -> LeaderError {
        loop {
            let Some(until) = self.leadership.valid_until() else {
                return LeaderError::Lost(Duration::ZERO);
            };
            let next = (Instant::now() + self.timing.retry).min(until);
            tokio::time::sleep_until(next.into()).await;
            let started = Instant::now();
            if started >= until {
                // Also after a pause (SIGSTOP): never renew a validity that already lapsed.
                return LeaderError::Lost(started - until + self.timing.renew_deadline);
            }
            match tokio::time::timeout_at(until.into(), self.try_acquire_or_renew()).await {
                Ok(Ok(true)) => self
                    .leadership
                    .set(Some(started + self.timing.renew_deadline)),
                Ok(Ok(false)) => {
                    let holder = self
                        .observed
                        .as_ref()
                        .and_then(|((h, _), _)| h.clone())
                        .unwrap_or_default();
                    return LeaderError::TakenOver(holder);
                }
                Ok(Err(e)) => {
                    tracing::warn!(lease = %self.name, error = %e, "could not renew the lease")
                }
                Err(_) => {
                    tracing::warn!(lease = %self.name, "renewing the lease did not finish within the renew deadline")
                }
            }
        }
    }

    /// Gives the lease up so a standby can take over at once (on graceful shutdown).
    pub async fn release(&mut self) {
        // Stop acting before anyone else can take over.
        self.leadership.set(None);
        let Ok(mut lease) = self.api.get(&self.name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_default();
        if spec.holder_identity.as_deref() != Some(&self.identity) {
            return;
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!(lease = %self.name, "released leadership"),
            Err(e) => tracing::warn!(lease = %self.name, error = %e, "could not release the lease"),
        }
    }

    /// One round of the election: Ok(true) when this candidate holds the lease afterwards.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = MicroTime(Timestamp::now());
        let lease_secs = i32::try_from(self.timing.lease.as_secs()).unwrap_or(i32::MAX);
        let existing = match self.api.get_opt(&self.name).await? {
            Some(lease) => lease,
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.identity.clone()),
                        lease_duration_seconds: Some(lease_secs),
                        acquire_time: Some(now.clone()),
                        renew_time: Some(now),
                        lease_transitions: Some(0),
                        ..LeaseSpec::default()
                    }),
                };
                return match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                    Err(e) => Err(e),
                };
            }
        };
        let spec = existing.spec.clone().unwrap_or_default();
        let record = (spec.holder_identity.clone(), spec.renew_time.clone());
        if self
            .observed
            .as_ref()
            .is_none_or(|(seen, _)| *seen != record)
        {
            self.observed = Some((record, Instant::now()));
        }
        let mine = spec.holder_identity.as_deref() == Some(self.identity.as_str());
        let vacant = spec.holder_identity.as_deref().is_none_or(str::is_empty);
        let held_for = spec
            .lease_duration_seconds
            .map_or(self.timing.lease, |s| Duration::from_secs(s.max(0) as u64));
        let expired = self
            .observed
            .as_ref()
            .is_some_and(|(_, seen_at)| seen_at.elapsed() > held_for);
        if !(mine || vacant || expired) {
            return Ok(false);
        }
        let mut lease = existing;
        let next = lease.spec.get_or_insert_default();
        if !mine {
            next.acquire_time = Some(now.clone());
            next.lease_transitions = Some(next.lease_transitions.unwrap_or(0) + 1);
        }
        next.holder_identity = Some(self.identity.clone());
        next.lease_duration_seconds = Some(lease_secs);
        next.renew_time = Some(now);
        // `replace` carries the resourceVersion we read: a concurrent writer makes it fail with 409.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leadership_holds_until_its_validity_ends() {
        assert_eq!(Leadership::unconditional().ensure_leading(), Ok(()));
        let l = Leadership::elected();
        assert_eq!(l.ensure_leading(), Err(NotLeading::NotHeld));
        l.set(Some(Instant::now() + Duration::from_secs(60)));
        assert_eq!(
            l.clone().ensure_leading(),
            Ok(()),
            "a clone shares the state"
        );
        l.set(Some(Instant::now()));
        assert!(matches!(l.ensure_leading(), Err(NotLeading::Lapsed(_))));
    }

    /// A renewal stuck on a connection that never answers (a half-open connection) does not
    /// keep this replica acting: `hold` returns by the end of its validity, revoked.
    #[tokio::test]
    async fn a_stuck_renewal_ends_leadership_by_the_renew_deadline() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _silent = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                open.push(conn);
            }
        });
        let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        let timing = Timing {
            lease: Duration::from_millis(1500),
            retry: Duration::from_millis(100),
            renew_deadline: Duration::from_secs(1),
        };
        let mut elector = Elector::new(Api::namespaced(client, "default"), "l", "me", timing);
        let guard = elector.leadership();
        let start = Instant::now();
        elector.leadership.set(Some(start + timing.renew_deadline));
        assert_eq!(guard.ensure_leading(), Ok(()));
        let lost = tokio::time::timeout(Duration::from_secs(5), elector.hold())
            .await
            .expect("hold returns although the API server never answers");
        assert!(matches!(lost, LeaderError::Lost(_)), "{lost:?}");
        let took = start.elapsed();
        assert!(
            took >= timing.renew_deadline && took < timing.lease,
            "stepped down after {took:?}"
        );
        assert_eq!(guard.ensure_leading(), Err(NotLeading::NotHeld));
    }
}
