//! Agrawal loan-application stream (Agrawal, Imielinski & Swami 1993,
//! "Database mining: a performance perspective"), as in MOA.
//!
//! Nine features: salary, commission, age, elevel (nominal, 5 values), car
//! (nominal, makes 1-20), zipcode (nominal, 9 values), hvalue, hyears, loan.
//! Ten classification functions; class 0 is the paper's "group A" for every
//! function, as in MOA (River flips this for functions 0-5). Function 4
//! tests `loan` in every branch as in the paper and MOA (River's version
//! tests `salary` against loan ranges in three places). Perturbation moves
//! each numeric value by up to `perturbation` times its range; house value
//! is perturbed within its zipcode's range (MOA clamps it to a degenerate
//! range).

use super::{Balancer, Generator};
use crate::rng::Rng;
use crate::schema::{Feature, Sample, Schema};
use crate::spec::{ParamReader, SpecError};

/// The Agrawal generator.
pub struct Agrawal {
    schema: Schema,
    rng: Rng,
    function: usize,
    perturbation: f64,
    balance: Balancer,
}

struct Person {
    salary: f64,
    commission: f64,
    age: f64,
    elevel: usize,
    car: usize,
    zipcode: usize,
    hvalue: f64,
    hyears: f64,
    loan: f64,
}

fn between(v: f64, lo: f64, hi: f64) -> bool {
    lo <= v && v <= hi
}

/// `true` when the person belongs to group A (class 0).
fn group_a(function: usize, p: &Person) -> bool {
    let (age, salary, loan, elevel) = (p.age, p.salary, p.loan, p.elevel);
    match function {
        0 => !(40.0..60.0).contains(&age),
        1 => {
            if age < 40.0 {
                between(salary, 50_000.0, 100_000.0)
            } else if age < 60.0 {
                between(salary, 75_000.0, 125_000.0)
            } else {
                between(salary, 25_000.0, 75_000.0)
            }
        }
        2 => {
            if age < 40.0 {
                elevel <= 1
            } else if age < 60.0 {
                (1..=3).contains(&elevel)
            } else {
                (2..=4).contains(&elevel)
            }
        }
        3 => {
            if age < 40.0 {
                if elevel <= 1 {
                    between(salary, 25_000.0, 75_000.0)
                } else {
                    between(salary, 50_000.0, 100_000.0)
                }
            } else if age < 60.0 {
                if (1..=3).contains(&elevel) {
                    between(salary, 50_000.0, 100_000.0)
                } else {
                    between(salary, 75_000.0, 125_000.0)
                }
            } else if (2..=4).contains(&elevel) {
                between(salary, 50_000.0, 100_000.0)
            } else {
                between(salary, 25_000.0, 75_000.0)
            }
        }
        4 => {
            if age < 40.0 {
                if between(salary, 50_000.0, 100_000.0) {
                    between(loan, 100_000.0, 300_000.0)
                } else {
                    between(loan, 200_000.0, 400_000.0)
                }
            } else if age < 60.0 {
                if between(salary, 75_000.0, 125_000.0) {
                    between(loan, 200_000.0, 400_000.0)
                } else {
                    between(loan, 300_000.0, 500_000.0)
                }
            } else if between(salary, 25_000.0, 75_000.0) {
                between(loan, 300_000.0, 500_000.0)
            } else {
                between(loan, 75_000.0, 300_000.0)
            }
        }
        5 => {
            let total = salary + p.commission;
            if age < 40.0 {
                between(total, 50_000.0, 100_000.0)
            } else if age < 60.0 {
                between(total, 75_000.0, 125_000.0)
            } else {
                between(total, 25_000.0, 75_000.0)
            }
        }
        6 => 2.0 * (salary + p.commission) / 3.0 - loan / 5.0 - 20_000.0 > 0.0,
        7 => 2.0 * (salary + p.commission) / 3.0 - 5000.0 * elevel as f64 - 20_000.0 > 0.0,
        8 => {
            2.0 * (salary + p.commission) / 3.0 - 5000.0 * elevel as f64 - loan / 5.0 - 10_000.0
                > 0.0
        }
        _ => {
            let equity = if p.hyears >= 20.0 {
                p.hvalue * (p.hyears - 20.0) / 10.0
            } else {
                0.0
            };
            2.0 * (salary + p.commission) / 3.0 - 5000.0 * elevel as f64 + equity / 5.0 - 10_000.0
                > 0.0
        }
    }
}

impl Agrawal {
    pub fn new(function: usize, perturbation: f64, balance: bool, seed: u64) -> Self {
        let names = |prefix: &str, range: std::ops::RangeInclusive<usize>| -> Vec<String> {
            range.map(|i| format!("{prefix}{i}")).collect()
        };
        let schema = Schema {
            features: vec![
                Feature::numeric("salary"),
                Feature::numeric("commission"),
                Feature::numeric("age"),
                Feature::nominal("elevel", names("level", 0..=4)),
                Feature::nominal("car", names("car", 1..=20)),
                Feature::nominal("zipcode", names("zipcode", 1..=9)),
                Feature::numeric("hvalue"),
                Feature::numeric("hyears"),
                Feature::numeric("loan"),
            ],
            classes: vec!["groupA".into(), "groupB".into()],
            target: "class".into(),
        };
        Agrawal {
            schema,
            rng: Rng::new(seed),
            function: function.min(9),
            perturbation,
            balance: Balancer::new(balance),
        }
    }

    pub(crate) fn from_params(r: &mut ParamReader<'_>, seed: u64) -> Result<Self, SpecError> {
        let function = r.usize_in("function", 0, 0, 9)?;
        let perturbation = r.f64_in("perturbation", 0.0, 0.0, 1.0)?;
        let balance = r.bool("balance", false)?;
        Ok(Agrawal::new(function, perturbation, balance, seed))
    }

    fn draw(&mut self) -> Person {
        let rng = &mut self.rng;
        let salary = rng.uniform(20_000.0, 150_000.0);
        let commission = if salary >= 75_000.0 {
            0.0
        } else {
            rng.uniform(10_000.0, 75_000.0)
        };
        let age = (20 + rng.below(61)) as f64;
        let elevel = rng.below(5);
        let car = rng.below(20);
        let zipcode = rng.below(9);
        let hvalue = (9 - zipcode) as f64 * 100_000.0 * rng.uniform(0.5, 1.5);
        let hyears = (1 + rng.below(30)) as f64;
        let loan = rng.uniform(0.0, 500_000.0);
        Person {
            salary,
            commission,
            age,
            elevel,
            car,
            zipcode,
            hvalue,
            hyears,
            loan,
        }
    }

    fn perturb(&mut self, v: f64, lo: f64, hi: f64) -> f64 {
        let shift = (hi - lo) * self.rng.uniform(-1.0, 1.0) * self.perturbation;
        (v + shift).clamp(lo, hi)
    }
}

impl Generator for Agrawal {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn generate(&mut self) -> Sample {
        let (mut p, y) = loop {
            let p = self.draw();
            let y = usize::from(!group_a(self.function, &p));
            if self.balance.accept(y) {
                break (p, y);
            }
        };
        if self.perturbation > 0.0 {
            p.salary = self.perturb(p.salary, 20_000.0, 150_000.0);
            if p.commission > 0.0 {
                p.commission = self.perturb(p.commission, 10_000.0, 75_000.0);
            }
            p.age = self.perturb(p.age, 20.0, 80.0).round();
            let base = (9 - p.zipcode) as f64 * 100_000.0;
            p.hvalue = self.perturb(p.hvalue, 0.5 * base, 1.5 * base);
            p.hyears = self.perturb(p.hyears, 1.0, 30.0).round();
            p.loan = self.perturb(p.loan, 0.0, 500_000.0);
        }
        Sample {
            x: vec![
                p.salary,
                p.commission,
                p.age,
                p.elevel as f64,
                p.car as f64,
                p.zipcode as f64,
                p.hvalue,
                p.hyears,
                p.loan,
            ],
            y,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_zero_is_the_age_rule() {
        let mut g = Agrawal::new(0, 0.0, false, 4);
        for _ in 0..2000 {
            let s = g.generate();
            let age = s.x[2];
            assert_eq!(s.y == 0, !(40.0..60.0).contains(&age));
        }
    }

    #[test]
    fn functions_give_both_classes() {
        for f in 0..10 {
            let mut g = Agrawal::new(f, 0.0, false, 1);
            let ones: usize = (0..5000).map(|_| g.generate().y).sum();
            // Function 9 is very skewed (about 0.2% class 1), as in MOA.
            assert!(ones > 0 && ones < 5000, "function {f}: {ones}");
        }
    }
}
