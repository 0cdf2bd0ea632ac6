//! LIS3DH driver tests from the expected I2C transactions; every mock ends with `done()`.

use anxin_firmware::driver::lis3dh::{
    ADDRESS_SA0_LOW as ADDR, Config, DataRate, Error, Lis3dh, Range, ReadPath, Resolution, reg,
};
use anxin_firmware::driver::{Acceleration, Accelerometer, Batch};
use embedded_hal::i2c::ErrorKind;
use embedded_hal_mock::eh1::i2c::{Mock as I2cMock, Transaction as T};

const OUT_BURST: u8 = reg::OUT_X_L | reg::AUTO_INCREMENT;

fn init(config: Config) -> Vec<T> {
    let ctrl1 = match config.rate {
        DataRate::Hz25 => 0x37,
        DataRate::Hz50 => 0x47,
        DataRate::Hz400 => 0x77,
        _ => unreachable!("tests use 25, 50 and 400 Hz"),
    } | if config.resolution == Resolution::LowPower {
        0x08
    } else {
        0
    };
    let fs = match config.range {
        Range::G2 => 0x00,
        Range::G4 => 0x10,
        Range::G8 => 0x20,
        Range::G16 => 0x30,
    };
    let hr = if config.resolution == Resolution::High {
        0x08
    } else {
        0
    };
    let mut t = vec![
        T::write_read(ADDR, vec![reg::WHO_AM_I], vec![0x33]),
        T::write(ADDR, vec![reg::CTRL_REG1, ctrl1]),
        T::write(ADDR, vec![reg::CTRL_REG4, 0x80 | fs | hr]),
    ];
    match config.read_path {
        ReadPath::DataReady => t.extend([
            T::write(ADDR, vec![reg::CTRL_REG5, 0x00]),
            T::write(ADDR, vec![reg::FIFO_CTRL_REG, 0x00]),
            T::write(ADDR, vec![reg::CTRL_REG3, 0x10]),
        ]),
        ReadPath::Fifo { watermark } => t.extend([
            T::write(ADDR, vec![reg::CTRL_REG5, 0x40]),
            T::write(ADDR, vec![reg::FIFO_CTRL_REG, 0x80 | watermark]),
            T::write(ADDR, vec![reg::CTRL_REG3, 0x04]),
        ]),
    }
    t
}

fn data_ready_config(range: Range, resolution: Resolution) -> Config {
    Config {
        range,
        rate: DataRate::Hz50,
        resolution,
        read_path: ReadPath::DataReady,
    }
}

/// Little-endian, left-justified output registers for three right-justified values.
fn out(values: [i16; 3], resolution: Resolution) -> Vec<u8> {
    let shift = 16 - resolution.bits();
    values
        .iter()
        .flat_map(|v| ((*v as i32) << shift).clamp(-32768, 32767).to_le_bytes()[..2].to_vec())
        .collect()
}

#[test]
fn new_checks_the_identity_and_writes_rate_range_resolution_and_fifo() {
    let expected = init(Config::PENDANT);
    // the pendant configuration, byte by byte: 25 Hz, XYZ on; BDU, ±16 g, HR; FIFO
    // stream with a watermark of 25 on INT1
    assert_eq!(
        expected[1..],
        [
            T::write(ADDR, vec![0x20, 0x37]),
            T::write(ADDR, vec![0x23, 0xB8]),
            T::write(ADDR, vec![0x24, 0x40]),
            T::write(ADDR, vec![0x2E, 0x99]),
            T::write(ADDR, vec![0x22, 0x04]),
        ]
    );
    let mut i2c = I2cMock::new(&expected);
    let dev = Lis3dh::new(i2c.clone(), ADDR, Config::PENDANT).expect("init");
    assert_eq!(dev.config(), Config::PENDANT);
    i2c.done();
}

#[test]
fn a_wrong_identity_is_refused_and_nothing_is_written() {
    let mut i2c = I2cMock::new(&[T::write_read(ADDR, vec![reg::WHO_AM_I], vec![0x6A])]);
    let err = Lis3dh::new(i2c.clone(), ADDR, Config::PENDANT).map(|_| ());
    assert_eq!(err, Err(Error::WrongDevice { who_am_i: 0x6A }));
    i2c.done();
}

#[test]
fn a_watermark_outside_the_fifo_is_refused_before_touching_the_bus() {
    let mut i2c = I2cMock::new(&[]);
    for watermark in [0, 32] {
        let config = Config {
            read_path: ReadPath::Fifo { watermark },
            ..Config::PENDANT
        };
        let err = Lis3dh::new(i2c.clone(), ADDR, config).map(|_| ());
        assert_eq!(err, Err(Error::BadWatermark { watermark }));
    }
    i2c.done();
}

#[test]
fn bus_errors_are_handed_back_as_they_were() {
    let mut i2c = I2cMock::new(&[
        T::write_read(ADDR, vec![reg::WHO_AM_I], vec![0]).with_error(ErrorKind::Other)
    ]);
    let err = Lis3dh::new(i2c.clone(), ADDR, Config::PENDANT).map(|_| ());
    assert_eq!(err, Err(Error::I2c(ErrorKind::Other)));
    i2c.done();
}

#[test]
fn the_data_ready_path_reads_one_sample_in_milli_g() {
    let config = data_ready_config(Range::G2, Resolution::High);
    let mut t = init(config);
    t.extend([
        T::write_read(ADDR, vec![reg::STATUS_REG], vec![0x08]),
        T::write_read(
            ADDR,
            vec![OUT_BURST],
            out([12, -980, 1000], Resolution::High),
        ),
        T::write_read(ADDR, vec![reg::STATUS_REG], vec![0x00]),
    ]);
    let mut i2c = I2cMock::new(&t);
    let mut dev = Lis3dh::new(i2c.clone(), ADDR, config).expect("init");
    let mut buf = [Acceleration::default(); 4];
    let batch = dev.read_ready(&mut buf).expect("read");
    assert_eq!(
        batch,
        Batch {
            len: 1,
            overrun: false
        }
    );
    assert_eq!(buf[0], Acceleration::new(12, -980, 1000));
    // no new data: nothing read
    assert_eq!(dev.read_ready(&mut buf).expect("read"), Batch::default());
    i2c.done();
}

#[test]
fn a_sample_overwritten_before_it_was_read_is_reported_as_an_overrun() {
    let config = data_ready_config(Range::G2, Resolution::High);
    let mut t = init(config);
    t.extend([
        T::write_read(ADDR, vec![reg::STATUS_REG], vec![0x88]),
        T::write_read(ADDR, vec![OUT_BURST], out([0, 0, 1000], Resolution::High)),
    ]);
    let mut i2c = I2cMock::new(&t);
    let mut dev = Lis3dh::new(i2c.clone(), ADDR, config).expect("init");
    let mut buf = [Acceleration::default(); 1];
    assert_eq!(
        dev.read_ready(&mut buf).expect("read"),
        Batch {
            len: 1,
            overrun: true
        }
    );
    i2c.done();
}

#[test]
fn saturation_at_full_scale_is_flagged_on_either_sign() {
    let config = data_ready_config(Range::G16, Resolution::High);
    let mut t = init(config);
    t.extend([
        T::write_read(
            ADDR,
            vec![OUT_BURST],
            vec![0xF0, 0x7F, 0x00, 0x00, 0x00, 0x00],
        ),
        T::write_read(
            ADDR,
            vec![OUT_BURST],
            vec![0x00, 0x00, 0x00, 0x80, 0x00, 0x00],
        ),
        T::write_read(
            ADDR,
            vec![OUT_BURST],
            out([2046, -2047, 83], Resolution::High),
        ),
    ]);
    let mut i2c = I2cMock::new(&t);
    let mut dev = Lis3dh::new(i2c.clone(), ADDR, config).expect("init");
    let top = dev.read().expect("read");
    assert!(top.saturated);
    assert_eq!(top.x_mg, 2047 * 12);
    let bottom = dev.read().expect("read");
    assert!(bottom.saturated);
    assert_eq!(bottom.y_mg, -2048 * 12);
    let below = dev.read().expect("read");
    assert!(
        !below.saturated,
        "one code inside full scale is a real value"
    );
    assert_eq!(
        (below.x_mg, below.y_mg, below.z_mg),
        (2046 * 12, -2047 * 12, 996)
    );
    i2c.done();
}

#[test]
fn normal_and_low_power_resolutions_use_their_own_sensitivity() {
    for (resolution, range, raw, mg) in [
        (Resolution::Normal, Range::G4, 250, 2000),
        (Resolution::LowPower, Range::G8, 16, 1024),
        (Resolution::LowPower, Range::G16, -127, -127 * 192),
    ] {
        let config = data_ready_config(range, resolution);
        let mut t = init(config);
        t.push(T::write_read(
            ADDR,
            vec![OUT_BURST],
            out([raw, 0, 0], resolution),
        ));
        let mut i2c = I2cMock::new(&t);
        let mut dev = Lis3dh::new(i2c.clone(), ADDR, config).expect("init");
        assert_eq!(
            dev.read().expect("read").x_mg,
            mg,
            "{resolution:?} {range:?}"
        );
        i2c.done();
    }
}

#[test]
fn the_fifo_is_drained_in_one_burst() {
    let mut t = init(Config::PENDANT);
    // digits at ±16 g, 12 mg each
    let mut burst = out([0, -84, 1], Resolution::High);
    burst.extend(out([0, -83, 1], Resolution::High));
    burst.extend(out([-1, -84, 2], Resolution::High));
    t.extend([
        T::write_read(ADDR, vec![reg::FIFO_SRC_REG], vec![0x03]),
        T::write_read(ADDR, vec![OUT_BURST], burst),
    ]);
    let mut i2c = I2cMock::new(&t);
    let mut dev = Lis3dh::new(i2c.clone(), ADDR, Config::PENDANT).expect("init");
    let mut buf = [Acceleration::default(); 32];
    let batch = dev.read_ready(&mut buf).expect("read");
    assert_eq!(
        batch,
        Batch {
            len: 3,
            overrun: false
        }
    );
    assert_eq!(buf[0], Acceleration::new(0, -1008, 12));
    assert_eq!(buf[1], Acceleration::new(0, -996, 12));
    assert_eq!(buf[2], Acceleration::new(-12, -1008, 24));
    i2c.done();
}

#[test]
fn a_full_fifo_reports_an_overrun_and_yields_all_32_samples() {
    let mut t = init(Config::PENDANT);
    let burst: Vec<u8> = (0..32)
        .flat_map(|i| out([i, 0, 84], Resolution::High))
        .collect();
    t.extend([
        T::write_read(ADDR, vec![reg::FIFO_SRC_REG], vec![0x40 | 0x80 | 0x1F]),
        T::write_read(ADDR, vec![OUT_BURST], burst),
    ]);
    let mut i2c = I2cMock::new(&t);
    let mut dev = Lis3dh::new(i2c.clone(), ADDR, Config::PENDANT).expect("init");
    let mut buf = [Acceleration::default(); 32];
    let batch = dev.read_fifo(&mut buf).expect("read");
    assert_eq!(
        batch,
        Batch {
            len: 32,
            overrun: true
        }
    );
    assert_eq!(buf[31].x_mg, 31 * 12);
    i2c.done();
}

#[test]
fn a_short_buffer_reads_only_what_fits_and_an_empty_fifo_reads_nothing() {
    let mut t = init(Config::PENDANT);
    t.extend([
        T::write_read(ADDR, vec![reg::FIFO_SRC_REG], vec![0x05]),
        T::write_read(
            ADDR,
            vec![OUT_BURST],
            out([1, 2, 84], Resolution::High).repeat(2),
        ),
        T::write_read(ADDR, vec![reg::FIFO_SRC_REG], vec![0x20]),
    ]);
    let mut i2c = I2cMock::new(&t);
    let mut dev = Lis3dh::new(i2c.clone(), ADDR, Config::PENDANT).expect("init");
    let mut two = [Acceleration::default(); 2];
    assert_eq!(dev.read_fifo(&mut two).expect("read").len, 2);
    assert_eq!(dev.read_fifo(&mut two).expect("read"), Batch::default());
    i2c.done();
}

#[test]
fn range_and_rate_can_change_at_run_time() {
    let config = data_ready_config(Range::G2, Resolution::High);
    let mut t = init(config);
    t.extend([
        T::write(ADDR, vec![reg::CTRL_REG4, 0x80 | 0x20 | 0x08]),
        T::write(ADDR, vec![reg::CTRL_REG1, 0x77]),
        T::write_read(ADDR, vec![OUT_BURST], out([250, 0, 0], Resolution::High)),
    ]);
    let mut i2c = I2cMock::new(&t);
    let mut dev = Lis3dh::new(i2c.clone(), ADDR, config).expect("init");
    dev.set_range(Range::G8).expect("range");
    dev.set_rate(DataRate::Hz400).expect("rate");
    assert_eq!(dev.read().expect("read").x_mg, 1000, "±8 g: 4 mg per digit");
    assert_eq!(dev.config().rate.period_ms(), 2);
    i2c.done();
}
