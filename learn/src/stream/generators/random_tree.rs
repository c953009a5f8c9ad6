//! Random tree concepts (Domingos & Hulten 2000, "Mining high-speed data
//! streams"): a random decision tree over numeric features in `[0, 1)` and
//! nominal features labels uniformly drawn samples. Below
//! `first_leaf_level`, a node becomes a leaf with probability
//! `leaf_fraction`; at `depth` every node is a leaf. A nominal feature is
//! not split on again below its node.

use super::Generator;
use crate::rng::Rng;
use crate::schema::{Feature, Sample, Schema};
use crate::spec::{ParamReader, SpecError};

enum Node {
    Leaf(usize),
    /// `x[feature] < threshold` goes to `children.0`, else `children.1`.
    Numeric {
        feature: usize,
        threshold: f64,
        children: (usize, usize),
    },
    /// One child per category.
    Nominal {
        feature: usize,
        children: Vec<usize>,
    },
}

/// Shape of the random tree.
#[derive(Debug, Clone, Copy)]
pub struct TreeShape {
    pub n_classes: usize,
    pub n_num: usize,
    pub n_cat: usize,
    pub n_categories: usize,
    pub depth: usize,
    pub first_leaf_level: usize,
    pub leaf_fraction: f64,
}

/// The random tree generator.
pub struct RandomTree {
    schema: Schema,
    rng: Rng,
    shape: TreeShape,
    nodes: Vec<Node>,
}

impl RandomTree {
    pub fn new(shape: TreeShape, model_seed: u64, seed: u64) -> Self {
        let mut features: Vec<Feature> = (0..shape.n_num)
            .map(|i| Feature::numeric(format!("num{i}")))
            .collect();
        for i in 0..shape.n_cat {
            let values = (0..shape.n_categories).map(|v| format!("v{v}")).collect();
            features.push(Feature::nominal(format!("cat{i}"), values));
        }
        let schema = Schema {
            features,
            classes: (0..shape.n_classes).map(|c| c.to_string()).collect(),
            target: "class".into(),
        };
        let mut t = RandomTree {
            schema,
            rng: Rng::new(seed),
            shape,
            nodes: Vec::new(),
        };
        let mut model = Rng::new(model_seed);
        let candidates: Vec<usize> = (0..shape.n_num + shape.n_cat).collect();
        let lo = vec![0.0; shape.n_num];
        let hi = vec![1.0; shape.n_num];
        t.grow(&mut model, 0, &candidates, &lo, &hi);
        t
    }

    pub(crate) fn from_params(r: &mut ParamReader<'_>, seed: u64) -> Result<Self, SpecError> {
        let shape = TreeShape {
            n_classes: r.usize_in("n_classes", 2, 2, 10_000)?,
            n_num: r.usize_in("n_num", 5, 0, 10_000)?,
            n_cat: r.usize_in("n_cat", 5, 0, 10_000)?,
            n_categories: r.usize_in("n_categories", 5, 2, 1000)?,
            depth: r.usize_in("depth", 5, 1, 30)?,
            first_leaf_level: r.usize_in("first_leaf_level", 3, 0, 30)?,
            leaf_fraction: r.f64_in("leaf_fraction", 0.15, 0.0, 1.0)?,
        };
        if shape.n_num + shape.n_cat == 0 {
            return Err(SpecError::BadValue {
                name: "random_tree".into(),
                param: "n_num".into(),
                value: "0".into(),
                why: "n_num + n_cat must be at least 1".into(),
            });
        }
        let model_seed = r.u64("model_seed", seed)?;
        Ok(RandomTree::new(shape, model_seed, seed))
    }

    /// Add the subtree rooted at `depth` and return its node index.
    fn grow(
        &mut self,
        rng: &mut Rng,
        depth: usize,
        candidates: &[usize],
        lo: &[f64],
        hi: &[f64],
    ) -> usize {
        let s = self.shape;
        let leaf = depth >= s.depth
            || candidates.is_empty()
            || (depth >= s.first_leaf_level && rng.chance(s.leaf_fraction));
        if leaf {
            self.nodes.push(Node::Leaf(rng.below(s.n_classes)));
            return self.nodes.len() - 1;
        }
        let feature = candidates[rng.below(candidates.len())];
        let me = self.nodes.len();
        self.nodes.push(Node::Leaf(0)); // placeholder, replaced below
        let node = if feature < s.n_num {
            let threshold = rng.uniform(lo[feature], hi[feature]);
            let mut left_hi = hi.to_vec();
            left_hi[feature] = threshold;
            let left = self.grow(rng, depth + 1, candidates, lo, &left_hi);
            let mut right_lo = lo.to_vec();
            right_lo[feature] = threshold;
            let right = self.grow(rng, depth + 1, candidates, &right_lo, hi);
            Node::Numeric {
                feature,
                threshold,
                children: (left, right),
            }
        } else {
            let rest: Vec<usize> = candidates
                .iter()
                .copied()
                .filter(|&c| c != feature)
                .collect();
            let children = (0..s.n_categories)
                .map(|_| self.grow(rng, depth + 1, &rest, lo, hi))
                .collect();
            Node::Nominal { feature, children }
        };
        self.nodes[me] = node;
        me
    }

    fn classify(&self, x: &[f64]) -> usize {
        let mut i = 0;
        loop {
            match &self.nodes[i] {
                Node::Leaf(c) => return *c,
                Node::Numeric {
                    feature,
                    threshold,
                    children,
                } => {
                    i = if x[*feature] < *threshold {
                        children.0
                    } else {
                        children.1
                    };
                }
                Node::Nominal { feature, children } => {
                    let v = (x[*feature] as usize).min(children.len() - 1);
                    i = children[v];
                }
            }
        }
    }
}

impl Generator for RandomTree {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn generate(&mut self) -> Sample {
        let s = self.shape;
        let mut x = Vec::with_capacity(s.n_num + s.n_cat);
        for _ in 0..s.n_num {
            x.push(self.rng.next_f64());
        }
        for _ in 0..s.n_cat {
            x.push(self.rng.below(s.n_categories) as f64);
        }
        let y = self.classify(&x);
        Sample { x, y }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_point_same_label() {
        let shape = TreeShape {
            n_classes: 3,
            n_num: 2,
            n_cat: 2,
            n_categories: 3,
            depth: 6,
            first_leaf_level: 2,
            leaf_fraction: 0.2,
        };
        let mut g = RandomTree::new(shape, 1, 2);
        assert!(g.nodes.len() > 1);
        for _ in 0..200 {
            let s = g.generate();
            assert_eq!(g.classify(&s.x), s.y);
        }
    }
}
