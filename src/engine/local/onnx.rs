//! Loading ONNX models into tract: constant `DequantizeLinear` nodes with blocked quantisation (which
//! tract refuses) are folded into f32 initializers first, then the model is typed for a fixed input
//! shape, optimised and made runnable.

use std::path::Path;
use std::sync::Arc;

use tract_onnx::pb::{tensor_proto::DataType, ModelProto, NodeProto, TensorProto};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::{ensure, format_err, TractErrorContext as _};

/// A model ready to run, shared between threads.
pub type Plan = Arc<TypedRunnableModel>;

/// Reads an ONNX file and folds its constant `DequantizeLinear` nodes.
pub fn read_proto(path: &Path) -> TractResult<ModelProto> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut proto = tract_onnx::onnx().proto_model_for_read(&mut bytes.as_slice())?;
    fold_dequantize(&mut proto)?;
    expand_prelu(&mut proto)?;
    Ok(proto)
}

/// Builds an optimised plan for one input shape (f32).
pub fn plan(proto: &ModelProto, input_shape: &[usize]) -> TractResult<Plan> {
    let model = tract_onnx::onnx()
        .with_ignore_value_info(true)
        .model_for_proto_model(proto)?
        .with_input_fact(0, f32::fact(input_shape).into())?;
    model.into_optimized()?.into_runnable()
}

/// Runs a plan on one f32 input and returns every output as f32 values with its shape.
pub fn run(plan: &Plan, input: Tensor) -> TractResult<Vec<(Vec<usize>, Vec<f32>)>> {
    let outputs = plan.run(tvec![input.into()])?;
    outputs
        .iter()
        .map(|t| {
            let t = t.cast_to::<f32>()?;
            let data = t.try_as_plain_ram()?.as_slice::<f32>()?.to_vec();
            Ok((t.shape().to_vec(), data))
        })
        .collect()
}

/// Replaces every `DequantizeLinear` node whose inputs are all initializers by an f32 initializer
/// holding `(x - zero_point) * scale`, with per-tensor, per-axis and blocked layouts (ONNX opset 21).
pub fn fold_dequantize(proto: &mut ModelProto) -> TractResult<usize> {
    let graph = proto
        .graph
        .as_mut()
        .ok_or_else(|| format_err!("the model has no graph"))?;
    let mut folded = Vec::new();
    let mut kept = Vec::with_capacity(graph.node.len());
    for node in std::mem::take(&mut graph.node) {
        let constant = node.op_type == "DequantizeLinear"
            && node
                .input
                .iter()
                .all(|i| i.is_empty() || graph.initializer.iter().any(|t| &t.name == i));
        if !constant {
            kept.push(node);
            continue;
        }
        let find = |name: &str| graph.initializer.iter().find(|t| t.name == name);
        let input = |k: usize| {
            node.input
                .get(k)
                .filter(|n| !n.is_empty())
                .and_then(|n| find(n))
        };
        let x = input(0).ok_or_else(|| format_err!("{}: no input", node.name))?;
        let scale = input(1).ok_or_else(|| format_err!("{}: no scale", node.name))?;
        let values = dequantize(&node, x, scale, input(2))
            .with_context(|| format!("folding {}", node.name))?;
        let output = node
            .output
            .first()
            .ok_or_else(|| format_err!("{}: no output", node.name))?;
        folded.push(TensorProto {
            name: output.clone(),
            dims: x.dims.clone(),
            data_type: DataType::Float as i32,
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..TensorProto::default()
        });
    }
    graph.node = kept;
    let count = folded.len();
    graph.initializer.extend(folded);
    // Quantised initializers that only the folded nodes read are dead weight now.
    let used: std::collections::HashSet<&str> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().map(String::as_str))
        .chain(graph.output.iter().map(|o| o.name.as_str()))
        .collect::<std::collections::HashSet<_>>();
    let used: std::collections::HashSet<String> = used.into_iter().map(str::to_owned).collect();
    let dropped: std::collections::HashSet<String> = graph
        .initializer
        .iter()
        .filter(|t| !used.contains(&t.name))
        .map(|t| t.name.clone())
        .collect();
    graph.initializer.retain(|t| used.contains(&t.name));
    // Older files also list initializers as graph inputs, and the quantiser left the inputs of the
    // original float weights declared though nothing reads them: neither must become a model input.
    graph
        .input
        .retain(|i| !dropped.contains(&i.name) && used.contains(&i.name));
    Ok(count)
}

/// The initializer `expand_prelu` adds: a scalar 0.
const ZERO: &str = "facegraph_prelu_zero";

/// Rewrites every `PRelu(x, slope)` as `Relu(x) + slope * Min(x, 0)`, the same values. tract turns
/// `PRelu` into a comparison and a select over broadcast boolean arrays, its generic (slow) path;
/// the rewritten form runs on its vectorised unary and per-channel kernels. SFace has one after each
/// of its 27 convolutions. Returns how many nodes were rewritten.
pub fn expand_prelu(proto: &mut ModelProto) -> TractResult<usize> {
    let graph = proto
        .graph
        .as_mut()
        .ok_or_else(|| format_err!("the model has no graph"))?;
    let mut count = 0;
    let mut nodes = Vec::with_capacity(graph.node.len());
    for node in std::mem::take(&mut graph.node) {
        if node.op_type != "PRelu" {
            nodes.push(node);
            continue;
        }
        let [x, slope] = node.input.as_slice() else {
            return Err(format_err!("{}: PRelu takes two inputs", node.name));
        };
        let [y] = node.output.as_slice() else {
            return Err(format_err!("{}: PRelu has one output", node.name));
        };
        let step = |op: &str, inputs: &[&str], output: &str| NodeProto {
            name: format!("{}/{op}", node.name),
            op_type: op.into(),
            input: inputs.iter().map(|&i| i.to_owned()).collect(),
            output: vec![output.to_owned()],
            ..NodeProto::default()
        };
        let (pos, neg, scaled) = (
            format!("{y}/positive"),
            format!("{y}/negative"),
            format!("{y}/scaled"),
        );
        nodes.push(step("Relu", &[x], &pos));
        nodes.push(step("Min", &[x, ZERO], &neg));
        nodes.push(step("Mul", &[&neg, slope], &scaled));
        nodes.push(step("Add", &[&pos, &scaled], y));
        count += 1;
    }
    graph.node = nodes;
    if count > 0 {
        graph.initializer.push(TensorProto {
            name: ZERO.into(),
            data_type: DataType::Float as i32,
            raw_data: 0f32.to_le_bytes().to_vec(),
            ..TensorProto::default()
        });
    }
    Ok(count)
}

fn attr_i(node: &NodeProto, name: &str) -> Option<i64> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

fn as_f32(t: &TensorProto) -> TractResult<Vec<f32>> {
    let tensor =
        tract_onnx::tensor::load_tensor(&tract_onnx::data_resolver::FopenDataResolver, t, None)?;
    let tensor = tensor.cast_to::<f32>()?;
    Ok(tensor.try_as_plain_ram()?.as_slice::<f32>()?.to_vec())
}

fn dequantize(
    node: &NodeProto,
    x: &TensorProto,
    scale: &TensorProto,
    zero: Option<&TensorProto>,
) -> TractResult<Vec<f32>> {
    let xv = as_f32(x)?;
    let sv = as_f32(scale)?;
    let zv = match zero {
        Some(z) => as_f32(z)?,
        None => vec![0.0; sv.len()],
    };
    ensure!(zv.len() == sv.len(), "zero point and scale differ in size");
    let shape: Vec<usize> = x.dims.iter().map(|&d| d.max(0) as usize).collect();
    let rank = shape.len() as i64;
    let block = attr_i(node, "block_size").unwrap_or(0);
    let axis = attr_i(node, "axis").unwrap_or(1);
    let axis = if axis < 0 { axis + rank } else { axis };
    if sv.len() == 1 {
        return Ok(xv.iter().map(|q| (q - zv[0]) * sv[0]).collect());
    }
    ensure!((0..rank).contains(&axis), "axis {axis} out of range");
    let axis = axis as usize;
    let dim = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let (blocks, block) = if block > 0 {
        let b = block as usize;
        (dim.div_ceil(b), b)
    } else {
        (dim, 1)
    };
    let outer: usize = shape[..axis].iter().product();
    // Per-axis parameters are one-dimensional; blocked ones have x's rank with `blocks` on the axis.
    let per_axis = block == 1 && sv.len() == dim;
    ensure!(
        per_axis || sv.len() == outer * blocks * inner,
        "scale of {} values does not fit x {:?} (axis {axis}, block {block})",
        sv.len(),
        shape
    );
    let mut out = Vec::with_capacity(xv.len());
    for (f, q) in xv.iter().enumerate() {
        let i = f % inner;
        let a = (f / inner) % dim;
        let o = f / (inner * dim);
        let k = if per_axis {
            a
        } else {
            (o * blocks + a / block) * inner + i
        };
        out.push((q - zv[k]) * sv[k]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int8(name: &str, dims: &[i64], v: &[i8]) -> TensorProto {
        TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: DataType::Int8 as i32,
            raw_data: v.iter().map(|&b| b as u8).collect(),
            ..TensorProto::default()
        }
    }

    fn float(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
        TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: DataType::Float as i32,
            raw_data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ..TensorProto::default()
        }
    }

    #[test]
    fn blocked_dequantisation_uses_one_scale_per_block_along_the_axis() {
        // x is 2x4, blocks of 2 along axis 1: scale and zero point are 2x2.
        let x = int8("x", &[2, 4], &[1, 2, 3, 4, 5, 6, 7, 8]);
        let s = float("s", &[2, 2], &[1.0, 10.0, 100.0, 1000.0]);
        let z = int8("z", &[2, 2], &[0, 1, 0, 1]);
        let node = NodeProto {
            op_type: "DequantizeLinear".into(),
            attribute: vec![
                tract_onnx::pb::AttributeProto {
                    name: "axis".into(),
                    i: 1,
                    ..Default::default()
                },
                tract_onnx::pb::AttributeProto {
                    name: "block_size".into(),
                    i: 2,
                    ..Default::default()
                },
            ],
            ..NodeProto::default()
        };
        let y = dequantize(&node, &x, &s, Some(&z)).unwrap();
        assert_eq!(y, vec![1.0, 2.0, 20.0, 30.0, 500.0, 600.0, 6000.0, 7000.0]);
    }

    /// A one-node model: `PRelu(x, slope)` with x of shape [1, 2, 2, 2] and a per-channel slope.
    fn prelu_model() -> ModelProto {
        use tract_onnx::pb::type_proto;
        let value = |name: &str| tract_onnx::pb::ValueInfoProto {
            name: name.into(),
            r#type: Some(tract_onnx::pb::TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: DataType::Float as i32,
                    shape: None,
                })),
                ..Default::default()
            }),
            ..Default::default()
        };
        ModelProto {
            ir_version: 8,
            opset_import: vec![tract_onnx::pb::OperatorSetIdProto {
                domain: String::new(),
                version: 21,
            }],
            graph: Some(tract_onnx::pb::GraphProto {
                node: vec![NodeProto {
                    name: "act".into(),
                    op_type: "PRelu".into(),
                    input: vec!["x".into(), "slope".into()],
                    output: vec!["y".into()],
                    ..NodeProto::default()
                }],
                initializer: vec![float("slope", &[2, 1, 1], &[0.25, -2.0])],
                input: vec![value("x")],
                output: vec![value("y")],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn prelu_rewritten_gives_the_same_values() {
        let x = [-4.0f32, -1.0, 0.0, 3.0, -0.5, 2.0, -8.0, 1.5];
        // Channel 0 scales negatives by 0.25, channel 1 by -2.
        let expected = [-1.0f32, -0.25, 0.0, 3.0, 1.0, 2.0, 16.0, 1.5];
        let eval = |proto: &ModelProto| {
            let plan = plan(proto, &[1, 2, 2, 2]).unwrap();
            let input = Tensor::from_shape(&[1, 2, 2, 2], &x).unwrap();
            run(&plan, input).unwrap().remove(0).1
        };
        let original = prelu_model();
        assert_eq!(eval(&original), expected);
        let mut rewritten = original.clone();
        assert_eq!(expand_prelu(&mut rewritten).unwrap(), 1);
        let ops: Vec<&str> = rewritten
            .graph
            .as_ref()
            .unwrap()
            .node
            .iter()
            .map(|n| n.op_type.as_str())
            .collect();
        assert_eq!(ops, ["Relu", "Min", "Mul", "Add"]);
        assert_eq!(eval(&rewritten), expected);
    }
}
