//! A timer precise to tens of microseconds: a `timerfd` (an hrtimer the
//! kernel fires on time, without tokio's millisecond wheel) registered with
//! the runtime's reactor. tokio's own timer rounds every deadline up to the
//! next millisecond, which put up to a millisecond of the generator's own
//! lateness into every latency it measured from an intended send time.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::Instant;

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// A `TimerFd` the reactor can watch.
struct Fd(TimerFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// One precise timer; arm it again for every deadline.
pub struct PreciseTimer {
    fd: AsyncFd<Fd>,
}

impl std::fmt::Debug for PreciseTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreciseTimer").finish()
    }
}

impl PreciseTimer {
    /// Must be called inside a tokio runtime with I/O enabled.
    #[allow(unsafe_code)]
    pub fn new() -> io::Result<PreciseTimer> {
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        // SAFETY: the descriptor is the TimerFd's own `OwnedFd`, moved into
        // the AsyncFd with it: it stays open, and the same, for as long as
        // the registration lives, and `as_raw_fd` always returns it.
        let fd = unsafe { AsyncFd::register_with_interest(Fd(timer), Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(PreciseTimer { fd })
    }

    /// Sets the timer to fire at `deadline` (at once if it has passed).
    pub fn arm(&self, deadline: Instant) -> io::Result<()> {
        // A zero expiration would disarm the timer: a deadline already
        // passed fires after a nanosecond instead.
        let after = deadline
            .saturating_duration_since(Instant::now())
            .max(std::time::Duration::from_nanos(1));
        self.fd
            .get_ref()
            .0
            .set(
                Expiration::OneShot(TimeSpec::from_duration(after)),
                TimerSetTimeFlags::empty(),
            )
            .map_err(io::Error::from)
    }

    /// Waits until the armed deadline has passed.
    pub async fn fired(&self) -> io::Result<()> {
        loop {
            let mut ready = self.fd.readable().await?;
            let mut expirations = [0u8; 8];
            match nix::unistd::read(ready.get_inner().0.as_fd(), &mut expirations) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EAGAIN) => ready.clear_ready(),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Sleeps until `deadline`, precisely.
    pub async fn sleep_until(&self, deadline: Instant) -> io::Result<()> {
        if deadline <= Instant::now() {
            return Ok(());
        }
        self.arm(deadline)?;
        self.fired().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Fires after its deadline, never before, and can be armed again;
    /// a deadline already passed returns at once. (How close to the
    /// deadline is a benchmark's question: `tierlab calibrate`.)
    #[tokio::test]
    async fn fires_after_the_deadline_and_rearms() {
        let timer = PreciseTimer::new().unwrap();
        for _ in 0..20 {
            let deadline = Instant::now() + Duration::from_micros(700);
            timer.sleep_until(deadline).await.unwrap();
            assert!(Instant::now() >= deadline, "fired early");
        }
        let past = Instant::now();
        timer.sleep_until(past).await.unwrap();
    }
}
