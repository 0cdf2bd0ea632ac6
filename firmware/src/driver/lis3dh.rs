//! ST LIS3DH three-axis accelerometer over I2C.
//!
//! Why this part: it is the usual choice in wearables and pendants (2 µA at 1 Hz,
//! 6–11 µA at 25–50 Hz), it measures up to ±16 g (impacts of falls exceed ±8 g), it has a
//! 32-sample FIFO so the MCU can sleep between reads, and it costs well under a dollar
//! from several distributors. The MPU-6050 draws milliamps with its gyroscope and the
//! ADXL345 draws several times more at the same rate.
//!
//! What the driver does:
//! - checks `WHO_AM_I` (0x33) and writes the configuration: output data rate, full-scale
//!   range, resolution (8-bit low power, 10-bit normal, 12-bit high resolution), block
//!   data update, and either the data-ready or the FIFO (stream mode with a watermark)
//!   path, each routed to the INT1 pin so the MCU can wait on it;
//! - reads one sample ([`Lis3dh::read`], after [`Lis3dh::data_ready`]) or every sample the
//!   FIFO holds in one burst ([`Lis3dh::read_fifo`]), reporting FIFO overruns;
//! - converts to milli-g with the datasheet sensitivities and flags samples whose axis
//!   sits at full scale ([`Acceleration::saturated`]).
//!
//! Register map and sensitivities: LIS3DH datasheet (DocID17530), tables 4, 17 and 20–36.

use embedded_hal::i2c::I2c;

use super::{Acceleration, Accelerometer, Batch};

/// I2C address with the SA0 pin low.
pub const ADDRESS_SA0_LOW: u8 = 0x18;
/// I2C address with the SA0 pin high.
pub const ADDRESS_SA0_HIGH: u8 = 0x19;
/// The value of `WHO_AM_I`.
pub const DEVICE_ID: u8 = 0x33;
/// FIFO depth, in samples.
pub const FIFO_DEPTH: usize = 32;

/// Register addresses.
pub mod reg {
    /// Device identification, reads [`super::DEVICE_ID`].
    pub const WHO_AM_I: u8 = 0x0F;
    /// Data rate, low-power enable, axis enables.
    pub const CTRL_REG1: u8 = 0x20;
    /// Interrupt routing to INT1.
    pub const CTRL_REG3: u8 = 0x22;
    /// Block data update, full scale, high resolution.
    pub const CTRL_REG4: u8 = 0x23;
    /// FIFO enable.
    pub const CTRL_REG5: u8 = 0x24;
    /// Data status: new data, overrun.
    pub const STATUS_REG: u8 = 0x27;
    /// First output register (X low byte).
    pub const OUT_X_L: u8 = 0x28;
    /// FIFO mode and watermark.
    pub const FIFO_CTRL_REG: u8 = 0x2E;
    /// FIFO status: watermark, overrun, empty, count.
    pub const FIFO_SRC_REG: u8 = 0x2F;
    /// Sub-address bit that makes the device auto-increment on multi-byte reads.
    pub const AUTO_INCREMENT: u8 = 0x80;
}

const CTRL1_LPEN: u8 = 0x08;
const CTRL1_XYZ_EN: u8 = 0x07;
const CTRL3_I1_ZYXDA: u8 = 0x10;
const CTRL3_I1_WTM: u8 = 0x04;
const CTRL4_BDU: u8 = 0x80;
const CTRL4_HR: u8 = 0x08;
const CTRL5_FIFO_EN: u8 = 0x40;
const FIFO_MODE_STREAM: u8 = 0b10 << 6;
const STATUS_ZYXDA: u8 = 0x08;
const STATUS_ZYXOR: u8 = 0x80;
const FIFO_SRC_OVRN: u8 = 0x40;
const FIFO_SRC_EMPTY: u8 = 0x20;
const FIFO_SRC_FSS: u8 = 0x1F;

/// Full-scale range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// ±2 g.
    G2,
    /// ±4 g.
    G4,
    /// ±8 g.
    G8,
    /// ±16 g.
    G16,
}

impl Range {
    const fn bits(self) -> u8 {
        match self {
            Range::G2 => 0b00,
            Range::G4 => 0b01,
            Range::G8 => 0b10,
            Range::G16 => 0b11,
        }
    }
}

/// Output data rate (the rates available in every resolution).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataRate {
    /// Power down: no samples.
    PowerDown,
    /// 1 Hz.
    Hz1,
    /// 10 Hz.
    Hz10,
    /// 25 Hz.
    Hz25,
    /// 50 Hz.
    Hz50,
    /// 100 Hz.
    Hz100,
    /// 200 Hz.
    Hz200,
    /// 400 Hz.
    Hz400,
}

impl DataRate {
    const fn bits(self) -> u8 {
        match self {
            DataRate::PowerDown => 0b0000,
            DataRate::Hz1 => 0b0001,
            DataRate::Hz10 => 0b0010,
            DataRate::Hz25 => 0b0011,
            DataRate::Hz50 => 0b0100,
            DataRate::Hz100 => 0b0101,
            DataRate::Hz200 => 0b0110,
            DataRate::Hz400 => 0b0111,
        }
    }

    /// Sample period in milliseconds (0 for power down; 2.5 ms rounds to 2).
    pub const fn period_ms(self) -> u16 {
        match self {
            DataRate::PowerDown => 0,
            DataRate::Hz1 => 1000,
            DataRate::Hz10 => 100,
            DataRate::Hz25 => 40,
            DataRate::Hz50 => 20,
            DataRate::Hz100 => 10,
            DataRate::Hz200 => 5,
            DataRate::Hz400 => 2,
        }
    }
}

/// Output resolution (operating mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// 8-bit, low power.
    LowPower,
    /// 10-bit, normal mode.
    Normal,
    /// 12-bit, high resolution.
    High,
}

impl Resolution {
    /// Significant bits of the left-justified output.
    pub const fn bits(self) -> u32 {
        match self {
            Resolution::LowPower => 8,
            Resolution::Normal => 10,
            Resolution::High => 12,
        }
    }
}

/// How the host learns that samples are ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPath {
    /// One sample at a time: data-ready on INT1, then [`Lis3dh::read`].
    DataReady,
    /// FIFO in stream mode: INT1 rises when `watermark` samples (1–31) are stored, then
    /// [`Lis3dh::read_fifo`] drains them in one burst.
    Fifo {
        /// FIFO level that raises INT1.
        watermark: u8,
    },
}

/// Device configuration written by [`Lis3dh::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Full-scale range.
    pub range: Range,
    /// Output data rate.
    pub rate: DataRate,
    /// Resolution.
    pub resolution: Resolution,
    /// Read path.
    pub read_path: ReadPath,
}

impl Config {
    /// The pendant's configuration: ±16 g so impacts do not clip, 25 Hz, 12-bit, FIFO
    /// with a watermark of 25 samples (one wake-up per second).
    pub const PENDANT: Config = Config {
        range: Range::G16,
        rate: DataRate::Hz25,
        resolution: Resolution::High,
        read_path: ReadPath::Fifo { watermark: 25 },
    };
}

impl Default for Config {
    fn default() -> Self {
        Config::PENDANT
    }
}

/// Driver errors; the bus error is handed back as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The I2C transaction failed.
    I2c(E),
    /// `WHO_AM_I` read something other than [`DEVICE_ID`]: wrong part or wrong address.
    WrongDevice {
        /// What the register read.
        who_am_i: u8,
    },
    /// A FIFO watermark outside 1–31.
    BadWatermark {
        /// The rejected watermark.
        watermark: u8,
    },
}

impl<E> From<E> for Error<E> {
    fn from(e: E) -> Self {
        Error::I2c(e)
    }
}

/// Status of the FIFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FifoStatus {
    /// Samples waiting (0–32).
    pub len: usize,
    /// The FIFO was full: the oldest samples are being overwritten.
    pub overrun: bool,
}

/// A LIS3DH on an I2C bus.
#[derive(Debug)]
pub struct Lis3dh<I2C> {
    i2c: I2C,
    address: u8,
    config: Config,
}

impl<I2C: I2c> Lis3dh<I2C> {
    /// Checks the device identity and writes `config`.
    pub fn new(i2c: I2C, address: u8, config: Config) -> Result<Self, Error<I2C::Error>> {
        if let ReadPath::Fifo { watermark } = config.read_path
            && (watermark == 0 || usize::from(watermark) >= FIFO_DEPTH)
        {
            return Err(Error::BadWatermark { watermark });
        }
        let mut dev = Lis3dh {
            i2c,
            address,
            config,
        };
        let who_am_i = dev.read_register(reg::WHO_AM_I)?;
        if who_am_i != DEVICE_ID {
            return Err(Error::WrongDevice { who_am_i });
        }
        dev.write_ctrl1()?;
        dev.write_ctrl4()?;
        dev.write_read_path()?;
        Ok(dev)
    }

    /// The configuration in force.
    pub fn config(&self) -> Config {
        self.config
    }

    /// Changes the full-scale range.
    pub fn set_range(&mut self, range: Range) -> Result<(), Error<I2C::Error>> {
        self.config.range = range;
        self.write_ctrl4()
    }

    /// Changes the output data rate.
    pub fn set_rate(&mut self, rate: DataRate) -> Result<(), Error<I2C::Error>> {
        self.config.rate = rate;
        self.write_ctrl1()
    }

    /// Whether a new sample is ready, and whether one was overwritten before being read.
    pub fn data_ready(&mut self) -> Result<(bool, bool), Error<I2C::Error>> {
        let status = self.read_register(reg::STATUS_REG)?;
        Ok((status & STATUS_ZYXDA != 0, status & STATUS_ZYXOR != 0))
    }

    /// Reads the current sample (the output registers, in one burst).
    pub fn read(&mut self) -> Result<Acceleration, Error<I2C::Error>> {
        let mut raw = [0u8; 6];
        self.i2c.write_read(
            self.address,
            &[reg::OUT_X_L | reg::AUTO_INCREMENT],
            &mut raw,
        )?;
        Ok(self.convert(&raw))
    }

    /// How many samples the FIFO holds.
    pub fn fifo_status(&mut self) -> Result<FifoStatus, Error<I2C::Error>> {
        let src = self.read_register(reg::FIFO_SRC_REG)?;
        let overrun = src & FIFO_SRC_OVRN != 0;
        let len = if src & FIFO_SRC_EMPTY != 0 {
            0
        } else if overrun {
            FIFO_DEPTH
        } else {
            usize::from(src & FIFO_SRC_FSS)
        };
        Ok(FifoStatus { len, overrun })
    }

    /// Drains up to `out.len()` samples from the FIFO, oldest first, in one burst read
    /// (with the FIFO on, the output address rolls back from `OUT_Z_H` to `OUT_X_L`).
    pub fn read_fifo(&mut self, out: &mut [Acceleration]) -> Result<Batch, Error<I2C::Error>> {
        let status = self.fifo_status()?;
        let n = status.len.min(out.len()).min(FIFO_DEPTH);
        if n == 0 {
            return Ok(Batch {
                len: 0,
                overrun: status.overrun,
            });
        }
        let mut raw = [0u8; 6 * FIFO_DEPTH];
        let raw = &mut raw[..6 * n];
        self.i2c
            .write_read(self.address, &[reg::OUT_X_L | reg::AUTO_INCREMENT], raw)?;
        for (slot, chunk) in out.iter_mut().zip(raw.chunks_exact(6)) {
            *slot = self.convert(chunk);
        }
        Ok(Batch {
            len: n,
            overrun: status.overrun,
        })
    }

    /// Gives the bus back.
    pub fn release(self) -> I2C {
        self.i2c
    }

    /// Milli-g per least significant bit of the right-justified value (datasheet table 4;
    /// the ±16 g figures are 12/48/192, not 8/32/128).
    pub const fn sensitivity_mg(range: Range, resolution: Resolution) -> i32 {
        let base = match resolution {
            Resolution::High => 1,
            Resolution::Normal => 4,
            Resolution::LowPower => 16,
        };
        match range {
            Range::G2 => base,
            Range::G4 => base * 2,
            Range::G8 => base * 4,
            Range::G16 => base * 12,
        }
    }

    fn convert(&self, raw: &[u8]) -> Acceleration {
        let bits = self.config.resolution.bits();
        let shift = 16 - bits;
        let max = (1i32 << (bits - 1)) - 1;
        let min = -(1i32 << (bits - 1));
        let sens = Self::sensitivity_mg(self.config.range, self.config.resolution);
        let mut saturated = false;
        let mut axis = |lo: u8, hi: u8| -> i16 {
            let v = i32::from(i16::from_le_bytes([lo, hi]) >> shift);
            if v >= max || v <= min {
                saturated = true;
            }
            // |v| ≤ 2048 and sens ≤ 12 (12-bit), ≤ 512 × 48, ≤ 128 × 192: always in i16.
            (v * sens).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
        };
        let (x, y, z) = match raw {
            [xl, xh, yl, yh, zl, zh, ..] => (axis(*xl, *xh), axis(*yl, *yh), axis(*zl, *zh)),
            _ => (0, 0, 0),
        };
        Acceleration {
            x_mg: x,
            y_mg: y,
            z_mg: z,
            saturated,
        }
    }

    fn read_register(&mut self, register: u8) -> Result<u8, Error<I2C::Error>> {
        let mut value = [0u8];
        self.i2c.write_read(self.address, &[register], &mut value)?;
        Ok(value[0])
    }

    fn write_register(&mut self, register: u8, value: u8) -> Result<(), Error<I2C::Error>> {
        self.i2c.write(self.address, &[register, value])?;
        Ok(())
    }

    fn write_ctrl1(&mut self) -> Result<(), Error<I2C::Error>> {
        let lp = if self.config.resolution == Resolution::LowPower {
            CTRL1_LPEN
        } else {
            0
        };
        let value = (self.config.rate.bits() << 4) | lp | CTRL1_XYZ_EN;
        self.write_register(reg::CTRL_REG1, value)
    }

    fn write_ctrl4(&mut self) -> Result<(), Error<I2C::Error>> {
        let hr = if self.config.resolution == Resolution::High {
            CTRL4_HR
        } else {
            0
        };
        let value = CTRL4_BDU | (self.config.range.bits() << 4) | hr;
        self.write_register(reg::CTRL_REG4, value)
    }

    fn write_read_path(&mut self) -> Result<(), Error<I2C::Error>> {
        match self.config.read_path {
            ReadPath::DataReady => {
                self.write_register(reg::CTRL_REG5, 0)?;
                self.write_register(reg::FIFO_CTRL_REG, 0)?;
                self.write_register(reg::CTRL_REG3, CTRL3_I1_ZYXDA)
            }
            ReadPath::Fifo { watermark } => {
                self.write_register(reg::CTRL_REG5, CTRL5_FIFO_EN)?;
                self.write_register(reg::FIFO_CTRL_REG, FIFO_MODE_STREAM | watermark)?;
                self.write_register(reg::CTRL_REG3, CTRL3_I1_WTM)
            }
        }
    }
}

impl<I2C: I2c> Accelerometer for Lis3dh<I2C> {
    type Error = Error<I2C::Error>;

    fn read_ready(&mut self, out: &mut [Acceleration]) -> Result<Batch, Self::Error> {
        match self.config.read_path {
            ReadPath::Fifo { .. } => self.read_fifo(out),
            ReadPath::DataReady => {
                let (ready, overrun) = self.data_ready()?;
                match out.first_mut() {
                    Some(slot) if ready => {
                        *slot = self.read()?;
                        Ok(Batch { len: 1, overrun })
                    }
                    _ => Ok(Batch { len: 0, overrun }),
                }
            }
        }
    }
}
