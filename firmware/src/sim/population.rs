//! The simulated households and their devices, as plain data (the gateway registers
//! them in its store before the simulation starts).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::device::DeviceKind;
use crate::wire::DeviceId;

/// A household id such as `h0001`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct HouseholdId(String);

impl HouseholdId {
    /// The id of the household numbered `n` (from 1).
    pub fn numbered(n: usize) -> Self {
        HouseholdId(format!("h{n:04}"))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for HouseholdId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A room of the home.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Room {
    /// Entrance hall with the front door.
    Entrance,
    /// Bedroom.
    Bedroom,
    /// Living room.
    LivingRoom,
    /// Kitchen.
    Kitchen,
    /// Bathroom.
    Bathroom,
}

impl Room {
    /// The short name used in device ids (`bedroom`, `living`, …).
    pub const fn slug(self) -> &'static str {
        match self {
            Room::Entrance => "entrance",
            Room::Bedroom => "bedroom",
            Room::LivingRoom => "living",
            Room::Kitchen => "kitchen",
            Room::Bathroom => "bathroom",
        }
    }
}

/// A kind of daily rhythm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Archetype {
    /// Up before six, to the wet market early, naps after lunch, early to bed.
    EarlyBird,
    /// Gets up late, stays up late, goes out now and then.
    LateRiser,
    /// Rarely leaves the flat.
    Homebody,
    /// Out most mornings and afternoons (market, park, community centre).
    Outgoing,
}

/// One resident's rhythm: the archetype with personal values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rhythm {
    /// The kind of rhythm.
    pub archetype: Archetype,
    /// Usual wake time on weekdays, minutes after local midnight.
    pub wake_min: u32,
    /// Day-to-day spread of the wake time (about one standard deviation), minutes.
    pub wake_spread_min: u32,
    /// Usual time of falling asleep, minutes after local midnight (may pass 1440).
    pub bed_min: u32,
    /// Later wake and bed time on weekends, minutes.
    pub weekend_shift_min: u32,
    /// Outings per day on average.
    pub outings_per_day: f64,
    /// Whether they nap after lunch.
    pub naps: bool,
    /// Night bathroom visits per night on average.
    pub night_visits: f64,
}

/// One simulated device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimDevice {
    /// Device id, e.g. `h0001-pir-bedroom`.
    pub id: DeviceId,
    /// What it is.
    pub kind: DeviceKind,
    /// Where it is.
    pub room: Room,
}

/// One household: one elder living alone, and the devices of the home.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Household {
    /// Household id, e.g. `h0001`.
    pub id: HouseholdId,
    /// The resident's (invented) name.
    pub resident: String,
    /// The same name in pinyin.
    pub resident_pinyin: String,
    /// The resident's daily rhythm.
    pub rhythm: Rhythm,
    /// The devices: front door, 2–3 PIR sensors, help button, kitchen gas sensor.
    pub devices: Vec<SimDevice>,
}

impl Household {
    /// The device of `kind` in `room`, if the home has one.
    pub fn device_in(&self, kind: DeviceKind, room: Room) -> Option<usize> {
        self.devices
            .iter()
            .position(|d| d.kind == kind && d.room == room)
    }

    /// The first device of `kind`.
    pub fn device_of(&self, kind: DeviceKind) -> Option<usize> {
        self.devices.iter().position(|d| d.kind == kind)
    }
}

/// All simulated households.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Population {
    /// The seed it was made from.
    pub seed: u64,
    /// The households, `h0001` first.
    pub households: Vec<Household>,
}

impl Population {
    /// Every device of every household, with its household.
    pub fn devices(&self) -> impl Iterator<Item = (&Household, &SimDevice)> {
        self.households
            .iter()
            .flat_map(|h| h.devices.iter().map(move |d| (h, d)))
    }

    /// The household with id `id`.
    pub fn household(&self, id: &str) -> Option<&Household> {
        self.households.iter().find(|h| h.id.as_str() == id)
    }
}

/// Invented family names (surname, pinyin).
const SURNAMES: [(&str, &str); 16] = [
    ("王", "Wang"),
    ("李", "Li"),
    ("张", "Zhang"),
    ("刘", "Liu"),
    ("陈", "Chen"),
    ("杨", "Yang"),
    ("赵", "Zhao"),
    ("黄", "Huang"),
    ("周", "Zhou"),
    ("吴", "Wu"),
    ("徐", "Xu"),
    ("孙", "Sun"),
    ("朱", "Zhu"),
    ("马", "Ma"),
    ("胡", "Hu"),
    ("郭", "Guo"),
];

/// Invented given names (given name, pinyin).
const GIVEN: [(&str, &str); 20] = [
    ("桂英", "Guiying"),
    ("秀兰", "Xiulan"),
    ("玉珍", "Yuzhen"),
    ("凤英", "Fengying"),
    ("淑芬", "Shufen"),
    ("美华", "Meihua"),
    ("兰芳", "Lanfang"),
    ("月娥", "Yue'e"),
    ("素琴", "Suqin"),
    ("彩霞", "Caixia"),
    ("德明", "Deming"),
    ("国强", "Guoqiang"),
    ("建华", "Jianhua"),
    ("永福", "Yongfu"),
    ("志成", "Zhicheng"),
    ("宝根", "Baogen"),
    ("金生", "Jinsheng"),
    ("伯涛", "Botao"),
    ("阿毛", "Amao"),
    ("庆余", "Qingyu"),
];

/// Most households [`population`] makes.
pub const MAX_HOMES: usize = 99_999;

/// Makes `homes` (at most [`MAX_HOMES`]) households deterministically from `seed`.
///
/// Every home has a front door contact (`hNNNN-door`), PIR sensors in the bedroom and
/// living room and, in most homes, a third one in the kitchen or bathroom
/// (`hNNNN-pir-<room>`), a help button by the bed (`hNNNN-help`) and a kitchen gas
/// sensor (`hNNNN-gas`). Residents get an invented name and one of four rhythms with
/// personal variation.
pub fn population(homes: usize, seed: u64) -> Population {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x616e_7869_6e5f_706f);
    let households = (1..=homes.min(MAX_HOMES))
        .map(|n| household(n, &mut rng))
        .collect();
    Population { seed, households }
}

fn household(n: usize, rng: &mut SmallRng) -> Household {
    let id = HouseholdId::numbered(n);
    let (sur, sur_py) = SURNAMES[rng.random_range(0..SURNAMES.len())];
    let (given, given_py) = GIVEN[rng.random_range(0..GIVEN.len())];
    let archetype = match rng.random_range(0..10) {
        0..=2 => Archetype::EarlyBird,
        3..=4 => Archetype::LateRiser,
        5..=6 => Archetype::Homebody,
        _ => Archetype::Outgoing,
    };
    let rhythm = rhythm(archetype, rng);

    let mut rooms = vec![Room::Bedroom, Room::LivingRoom];
    match rng.random_range(0..10) {
        0..=3 => rooms.push(Room::Kitchen),
        4..=6 => rooms.push(Room::Bathroom),
        _ => {}
    }
    let dev = |suffix: &str, kind, room| SimDevice {
        id: device_id(&id, suffix),
        kind,
        room,
    };
    let mut devices = vec![dev("door", DeviceKind::Door, Room::Entrance)];
    for room in rooms {
        devices.push(dev(
            &format!("pir-{}", room.slug()),
            DeviceKind::Motion,
            room,
        ));
    }
    devices.push(dev("help", DeviceKind::Help, Room::Bedroom));
    devices.push(dev("gas", DeviceKind::Gas, Room::Kitchen));
    Household {
        id,
        resident: format!("{sur}{given}"),
        resident_pinyin: format!("{sur_py} {given_py}"),
        rhythm,
        devices,
    }
}

fn device_id(home: &HouseholdId, suffix: &str) -> DeviceId {
    // `h` + at most 5 digits + `-` + at most 12 characters of [a-z-]: always valid.
    DeviceId::new(&format!("{home}-{suffix}")).expect("simulated device ids are valid")
}

fn rhythm(archetype: Archetype, rng: &mut SmallRng) -> Rhythm {
    let (wake, spread, bed, shift, outings, nap_p, night) = match archetype {
        Archetype::EarlyBird => (5 * 60 + 30, 15, 21 * 60, 0, 1.3, 0.8, 1.0),
        Archetype::LateRiser => (8 * 60 + 30, 35, 23 * 60 + 30, 40, 0.8, 0.2, 0.5),
        Archetype::Homebody => (6 * 60 + 45, 25, 21 * 60 + 45, 15, 0.35, 0.6, 1.2),
        Archetype::Outgoing => (6 * 60 + 15, 20, 22 * 60 + 15, 20, 2.0, 0.3, 0.6),
    };
    let personal = |rng: &mut SmallRng, base: u32, span: i32| {
        (base as i32 + rng.random_range(-span..=span)).max(0) as u32
    };
    Rhythm {
        archetype,
        wake_min: personal(rng, wake, 30),
        wake_spread_min: personal(rng, spread, 5),
        bed_min: personal(rng, bed, 30),
        weekend_shift_min: shift,
        outings_per_day: outings * rng.random_range(0.7..1.3),
        naps: rng.random_bool(nap_p),
        night_visits: night * rng.random_range(0.5..1.5),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn population_is_deterministic_with_readable_ids() {
        let a = population(12, 7);
        assert_eq!(a, population(12, 7));
        assert_ne!(a, population(12, 8));
        let h = &a.households[0];
        assert_eq!(h.id.as_str(), "h0001");
        assert_eq!(h.devices[0].id.as_str(), "h0001-door");
        assert!(
            h.devices
                .iter()
                .any(|d| d.id.as_str() == "h0001-pir-bedroom")
        );
        assert!(h.devices.iter().any(|d| d.id.as_str() == "h0001-help"));
        assert!(h.devices.iter().any(|d| d.id.as_str() == "h0001-gas"));
        for h in &a.households {
            let pirs = h
                .devices
                .iter()
                .filter(|d| d.kind == DeviceKind::Motion)
                .count();
            assert!((2..=3).contains(&pirs));
            assert!(!h.resident.is_empty());
        }
    }

    #[test]
    fn population_serializes_as_plain_data() {
        let p = population(1, 1);
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["households"][0]["id"], "h0001");
        assert_eq!(json["households"][0]["devices"][0]["id"], "h0001-door");
        assert_eq!(json["households"][0]["devices"][0]["kind"], "door");
        assert_eq!(json["households"][0]["devices"][0]["room"], "entrance");
    }
}
