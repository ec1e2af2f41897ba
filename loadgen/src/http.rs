//! The HTTP side of a run, driven by goose 0.19: creating the rooms through
//! `POST /api/rooms` during set-up, and while the players play, the
//! scenario's room-lookup bursts and `/health` polling. goose owns these
//! users, their pacing and their timings; this module only describes the
//! traffic and turns goose's metrics into the `http` section of `run.json`.
//!
//! goose keeps one process-wide Ctrl-C handler and kill switch: `tierlab`
//! installs its own handler first (see `main.rs`), so goose's attempt fails
//! harmlessly and a run ends goose attacks through [`goose::trigger_killswitch`].

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use goose::config::GooseConfiguration;
use goose::config::{GooseDefault, GooseDefaultType};
use goose::goose::{GooseMethod, GooseRequest, GooseUser, Scenario, Transaction};
use goose::metrics::GooseMetrics;
use goose::prelude::{GooseAttack, TransactionResult};
use rand::Rng;
use tierlab_protocol::room_code::{random_room_code, ROOM_CODE_LEN};
use tierlab_protocol::{CreateRoom, RoomCreated};

use crate::scenario::HttpTraffic;
use tierlab_record::Percentiles;
pub use tierlab_record::{HttpEndpoint, HttpRecord, Phase};

/// How long a run waits for goose to wind down after the kill switch.
const WIND_DOWN: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("goose: {0}")]
    Goose(String),
    #[error("{created} of {wanted} rooms created through POST /api/rooms; first failure: {first}")]
    Rooms {
        created: usize,
        wanted: u32,
        first: String,
    },
}

impl From<goose::GooseError> for HttpError {
    fn from(e: goose::GooseError) -> Self {
        // goose's Display leaves out which option it refused.
        HttpError::Goose(format!("{e:?}"))
    }
}

/// Creates `count` rooms with `users` goose users posting concurrently.
pub async fn create_rooms(
    base: &str,
    request: &CreateRoom,
    count: u32,
    users: u32,
) -> Result<(Vec<RoomCreated>, HttpRecord), HttpError> {
    let users = users.clamp(1, count.max(1));
    let creation = Arc::new(Creation {
        request: request.clone(),
        next: AtomicU32::new(0),
        count,
        created: Mutex::new(Vec::with_capacity(count as usize)),
        failures: Mutex::new(Vec::new()),
    });
    let task = Arc::clone(&creation);
    let transaction = Transaction::new(Arc::new(move |user| {
        let creation = Arc::clone(&task);
        Box::pin(async move { creation.create_one(user).await })
    }))
    .set_name("create room");
    let scenario = Scenario::new("rooms").register_transaction(transaction);
    let metrics = attack(base, users as usize, vec![scenario])?
        .set_default(GooseDefault::Iterations, count.div_ceil(users) as usize)?
        .execute()
        .await?;
    let created = std::mem::take(&mut *lock(&creation.created));
    if created.len() < count as usize {
        let first = lock(&creation.failures)
            .first()
            .cloned()
            .unwrap_or_else(|| "stopped before every room was created".into());
        return Err(HttpError::Rooms {
            created: created.len(),
            wanted: count,
            first,
        });
    }
    Ok((created, record(&metrics, Phase::Setup)))
}

/// Shared by the goose users creating rooms.
struct Creation {
    request: CreateRoom,
    next: AtomicU32,
    count: u32,
    created: Mutex<Vec<RoomCreated>>,
    failures: Mutex<Vec<String>>,
}

impl Creation {
    async fn create_one(&self, user: &mut GooseUser) -> TransactionResult {
        if self.next.fetch_add(1, Ordering::Relaxed) >= self.count {
            return Ok(());
        }
        let outcome = match user.post_json("/api/rooms", &self.request).await?.response {
            Ok(response) if response.status().is_success() => response
                .json::<RoomCreated>()
                .await
                .map_err(|e| format!("POST /api/rooms: unreadable answer: {e}")),
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                Err(format!("POST /api/rooms: {status} {body}"))
            }
            Err(e) => Err(format!("POST /api/rooms: {e}")),
        };
        match outcome {
            Ok(room) => lock(&self.created).push(room),
            Err(e) => lock(&self.failures).push(e),
        }
        Ok(())
    }
}

/// The traffic beside the players, until [`Traffic::stop`].
#[derive(Debug)]
pub struct Traffic {
    task: tokio::task::JoinHandle<Result<GooseMetrics, HttpError>>,
}

impl Traffic {
    /// Starts lookups of `rooms` through `base` and health polls of
    /// `replicas` (base URLs), as `traffic` describes; `None` when it asks
    /// for no traffic.
    pub fn start(
        traffic: &HttpTraffic,
        base: &str,
        replicas: Vec<String>,
        rooms: Vec<Arc<str>>,
        run_for: Duration,
    ) -> Option<Traffic> {
        let mut scenarios = Vec::new();
        if traffic.lookup_users > 0 && !rooms.is_empty() {
            scenarios.push(lookups(traffic, rooms).ok()?);
        }
        if let Some(every) = traffic.health_every.filter(|_| !replicas.is_empty()) {
            scenarios.push(health(every, replicas).ok()?);
        }
        if scenarios.is_empty() {
            return None;
        }
        let users = traffic.lookup_users as usize + usize::from(traffic.health_every.is_some());
        let base = base.to_owned();
        let task = tokio::spawn(async move {
            let attack = attack(&base, users, scenarios)?
                .set_default(GooseDefault::RunTime, run_for.as_secs() as usize + 1)?
                .set_default(GooseDefault::NoResetMetrics, true)?;
            Ok(attack.execute().await?)
        });
        Some(Traffic { task })
    }

    /// Ends the traffic and returns its figures.
    pub async fn stop(self) -> Result<HttpRecord, HttpError> {
        let mut task = self.task;
        let deadline = tokio::time::Instant::now() + WIND_DOWN;
        // Pulled again until goose stops: an attack still initialising
        // resets the kill switch.
        while tokio::time::Instant::now() < deadline {
            goose::trigger_killswitch("the run ended");
            if let Ok(done) = tokio::time::timeout(Duration::from_millis(100), &mut task).await {
                let metrics = done.map_err(|e| HttpError::Goose(e.to_string()))??;
                return Ok(record(&metrics, Phase::Run));
            }
        }
        task.abort();
        Err(HttpError::Goose(format!(
            "did not stop within {}s",
            WIND_DOWN.as_secs()
        )))
    }
}

/// Bursts of `GET /api/rooms/{code}`, as a lobby validating typed codes.
fn lookups(traffic: &HttpTraffic, rooms: Vec<Arc<str>>) -> Result<Scenario, goose::GooseError> {
    let mut codes = rooms;
    codes.sort();
    let rooms = Arc::new(Rooms { codes });
    let (burst, unknown_share) = (traffic.lookup_burst, traffic.unknown_share);
    let transaction = Transaction::new(Arc::new(move |user| {
        let rooms = Arc::clone(&rooms);
        Box::pin(async move {
            for _ in 0..burst {
                lookup(user, &rooms, unknown_share).await?;
            }
            Ok(())
        })
    }))
    .set_name("lookup burst");
    Ok(Scenario::new("room lookups")
        .set_weight(traffic.lookup_users as usize)?
        .set_wait_time(traffic.lookup_every, traffic.lookup_every)?
        .register_transaction(transaction))
}

async fn lookup(user: &mut GooseUser, rooms: &Rooms, unknown_share: f64) -> TransactionResult {
    let (path, name, expect) = {
        let mut rng = rand::rng();
        if rng.random_bool(unknown_share) {
            let code = rooms.unknown(&mut rng);
            (format!("/api/rooms/{code}"), "/api/rooms/{unknown}", 404)
        } else {
            let code = &rooms.codes[rng.random_range(0..rooms.codes.len())];
            (format!("/api/rooms/{code}"), "/api/rooms/{code}", 200)
        }
    };
    let request = GooseRequest::builder()
        .method(GooseMethod::Get)
        .path(path.as_str())
        .name(name)
        .expect_status_code(expect)
        .build();
    user.request(request).await?;
    Ok(())
}

/// The run's room codes, sorted, to look up and to avoid.
struct Rooms {
    codes: Vec<Arc<str>>,
}

impl Rooms {
    /// A well-formed code that is none of the run's rooms (another run's
    /// room could answer, which the odds — rooms in 31^6 — make moot).
    fn unknown(&self, rng: &mut impl Rng) -> String {
        loop {
            let code = random_room_code(rng, ROOM_CODE_LEN);
            if self
                .codes
                .binary_search_by(|c| (**c).cmp(code.as_str()))
                .is_err()
            {
                return code;
            }
        }
    }
}

/// One user polling every replica's `/health`.
fn health(every: Duration, replicas: Vec<String>) -> Result<Scenario, goose::GooseError> {
    let urls: Arc<Vec<String>> = Arc::new(replicas.iter().map(|r| format!("{r}/health")).collect());
    let transaction = Transaction::new(Arc::new(move |user| {
        let urls = Arc::clone(&urls);
        Box::pin(async move {
            for url in urls.iter() {
                user.get_named(url, "/health").await?;
            }
            Ok(())
        })
    }))
    .set_name("health poll");
    Ok(Scenario::new("health polling")
        .set_weight(1)?
        .set_wait_time(every, every)?
        .register_transaction(transaction))
}

/// A goose attack of `scenarios` on `base` with `users`, quiet, without controllers, its
/// users all launched at once.
fn attack(
    base: &str,
    users: usize,
    scenarios: Vec<Scenario>,
) -> Result<Box<GooseAttack>, goose::GooseError> {
    scenarios
        .into_iter()
        .fold(
            GooseAttack::initialize_with_config(GooseConfiguration::default())?,
            GooseAttack::register_scenario,
        )
        .set_default(GooseDefault::Host, base)?
        .set_default(GooseDefault::Users, users)?
        .set_default(GooseDefault::IncreaseRate, "1000")?
        .set_default(GooseDefault::Timeout, "10")?
        .set_default(GooseDefault::Quiet, 1)?
        .set_default(GooseDefault::NoPrintMetrics, true)?
        .set_default(GooseDefault::NoErrorSummary, true)?
        .set_default(GooseDefault::NoTelnet, true)
}

fn record(metrics: &GooseMetrics, phase: Phase) -> HttpRecord {
    let seconds = metrics.duration.max(1) as f64;
    metrics
        .requests
        .iter()
        .map(|(name, aggregate)| {
            let times = &aggregate.raw_data;
            let ms = |q: f32| times.percentile_us(q) as f64 / 1000.0;
            let requests = (aggregate.success_count + aggregate.fail_count) as u64;
            let endpoint = HttpEndpoint {
                phase,
                requests,
                failures: aggregate.fail_count as u64,
                per_second: requests as f64 / seconds,
                ms: Percentiles {
                    count: times.counter as u64,
                    p50: ms(0.50),
                    p95: ms(0.95),
                    p99: ms(0.99),
                    max: times.maximum_time_us as f64 / 1000.0,
                },
            };
            (name.clone(), endpoint)
        })
        .collect()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
