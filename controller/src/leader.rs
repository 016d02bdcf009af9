//! Leader election on a `coordination.k8s.io/v1` Lease, so two operator replicas never act at once.
//!
//! Expiry is judged by this process's own clock: a holder is presumed alive until the Lease
//! record has stayed unchanged for a whole lease duration *as observed locally*, so clock skew
//! between nodes cannot make two replicas lead at once (client-go does the same).

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
    /// A leader that could not renew for this long steps down (must be below `lease`).
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
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Waits until this candidate holds the lease.
    pub async fn acquire(&mut self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    tracing::info!(lease = %self.name, identity = %self.identity, "acquired leadership");
                    return;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(lease = %self.name, error = %e, "lease election failed; retrying")
                }
            }
            tokio::time::sleep(self.timing.retry).await;
        }
    }

    /// Renews the lease until it is lost; returns why.
    pub async fn hold(&mut self) -> LeaderError {
        let mut last_renewal = Instant::now();
        loop {
            tokio::time::sleep(self.timing.retry).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_renewal = Instant::now(),
                Ok(false) => {
                    let holder = self
                        .observed
                        .as_ref()
                        .and_then(|((h, _), _)| h.clone())
                        .unwrap_or_default();
                    return LeaderError::TakenOver(holder);
                }
                Err(e) => {
                    tracing::warn!(lease = %self.name, error = %e, "could not renew the lease")
                }
            }
            if last_renewal.elapsed() > self.timing.renew_deadline {
                return LeaderError::Lost(last_renewal.elapsed());
            }
        }
    }

    /// Gives the lease up so a standby can take over at once (on graceful shutdown).
    pub async fn release(&mut self) {
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
