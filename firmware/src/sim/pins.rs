//! Simulated pins and gas probe: shared cells the simulation sets and the firmware reads.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use embedded_hal::digital::{ErrorType, InputPin, OutputPin};

use crate::input::GasProbe;

/// A digital line shared between the simulation and the firmware: an input the
/// simulation drives, or an output (siren, LED) it watches.
#[derive(Debug, Clone, Default)]
pub struct SimPin(Arc<AtomicBool>);

impl SimPin {
    /// A line at `high`.
    pub fn new(high: bool) -> Self {
        SimPin(Arc::new(AtomicBool::new(high)))
    }

    /// Drives the line.
    pub fn set(&self, high: bool) {
        self.0.store(high, Ordering::Relaxed);
    }

    /// Reads the line.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl ErrorType for SimPin {
    type Error = Infallible;
}

impl InputPin for SimPin {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(self.get())
    }

    fn is_low(&mut self) -> Result<bool, Infallible> {
        Ok(!self.get())
    }
}

impl OutputPin for SimPin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.set(false);
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Infallible> {
        self.set(true);
        Ok(())
    }
}

/// A gas reading shared between the simulation and the firmware.
#[derive(Debug, Clone, Default)]
pub struct SimGas(Arc<AtomicU32>);

impl SimGas {
    /// A probe reading `ppm`.
    pub fn new(ppm: u32) -> Self {
        SimGas(Arc::new(AtomicU32::new(ppm)))
    }

    /// Sets the reading.
    pub fn set(&self, ppm: u32) {
        self.0.store(ppm, Ordering::Relaxed);
    }

    /// The reading.
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}

impl GasProbe for SimGas {
    fn read_ppm(&mut self) -> Option<u32> {
        Some(self.get())
    }
}
