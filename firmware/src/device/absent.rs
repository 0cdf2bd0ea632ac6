//! Stand-ins for the generic parameters of inputs a device does not have.

use core::convert::Infallible;

use embedded_hal::digital::{ErrorType, InputPin, OutputPin};

use crate::input::GasProbe;

/// A pin that is not there: reads low, ignores writes. Use it as the pin type of a
/// device that has none of a kind (for example the output type of a door sensor).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoPin;

impl ErrorType for NoPin {
    type Error = Infallible;
}

impl InputPin for NoPin {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(false)
    }

    fn is_low(&mut self) -> Result<bool, Infallible> {
        Ok(true)
    }
}

impl OutputPin for NoPin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// A gas probe that is not there: never has a reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoGas;

impl GasProbe for NoGas {
    fn read_ppm(&mut self) -> Option<u32> {
        None
    }
}
