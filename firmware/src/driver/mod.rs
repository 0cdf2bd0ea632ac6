//! Sensor drivers over `embedded-hal` 1.0 I2C.
//!
//! - [`lis3dh`]: the pendant's accelerometer, an ST LIS3DH (range, rate, resolution,
//!   data-ready and FIFO read paths);
//! - [`replay`]: an [`Accelerometer`] that plays back a recorded trace (the test double,
//!   also used by the pendant image under QEMU).
//!
//! The fall detector ([`crate::fall`]) only sees [`Acceleration`] samples through the
//! [`Accelerometer`] trait, so the part can change without touching it.

pub mod lis3dh;
pub mod replay;

/// One accelerometer sample, in milli-g per axis.
///
/// `saturated` is set when any axis read its full-scale code: the true value on that
/// axis is at least as large as reported, so the magnitude is a lower bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Acceleration {
    /// X axis, milli-g.
    pub x_mg: i16,
    /// Y axis, milli-g.
    pub y_mg: i16,
    /// Z axis, milli-g.
    pub z_mg: i16,
    /// Whether any axis sat at full scale.
    pub saturated: bool,
}

impl Acceleration {
    /// A sample that did not saturate.
    pub const fn new(x_mg: i16, y_mg: i16, z_mg: i16) -> Self {
        Acceleration {
            x_mg,
            y_mg,
            z_mg,
            saturated: false,
        }
    }

    /// Squared magnitude, in mg². Never overflows: 3 × 32768² < 2³².
    pub const fn magnitude_sq(&self) -> u32 {
        let x = self.x_mg.unsigned_abs() as u32;
        let y = self.y_mg.unsigned_abs() as u32;
        let z = self.z_mg.unsigned_abs() as u32;
        x * x + y * y + z * z
    }

    /// Magnitude in mg (integer square root, rounded down).
    pub const fn magnitude_mg(&self) -> u16 {
        crate::fall::math::isqrt_u32(self.magnitude_sq())
    }
}

/// What one read of an [`Accelerometer`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Batch {
    /// How many samples were written at the start of the caller's buffer, oldest first.
    pub len: usize,
    /// Whether the sensor lost samples before these (FIFO overrun): the caller should
    /// treat the time before this batch as missing data.
    pub overrun: bool,
}

/// An accelerometer that delivers samples at a fixed output data rate.
pub trait Accelerometer {
    /// The bus or device error.
    type Error;

    /// Reads every sample the sensor has ready (up to `out.len()`), oldest first.
    fn read_ready(&mut self, out: &mut [Acceleration]) -> Result<Batch, Self::Error>;
}
