//! DuckLake `geometry` values: WKB (as DuckDB stores them in Parquet) to WKT
//! (as DuckDB prints them, `POINT (1 2)`, `LINESTRING Z (5 5 5, 10 10 10)`).
//!
//! lakeq reads geometry columns as their WKT text; it has no spatial functions.
//! Both ISO WKB (type codes 1001/2001/3001 for Z/M/ZM) and EWKB flag bits are
//! decoded; anything else is an error naming what was found.

use std::fmt::Write as _;

use crate::spec::float_text::push_float;

/// Decode one WKB value into DuckDB's WKT text.
pub fn wkb_to_wkt(wkb: &[u8]) -> Result<String, String> {
    let mut reader = Reader { bytes: wkb, pos: 0 };
    let mut out = String::new();
    reader.geometry(&mut out, 0)?;
    if reader.pos != wkb.len() {
        return Err(format!(
            "{} trailing bytes after the geometry",
            wkb.len() - reader.pos
        ));
    }
    Ok(out)
}

/// Nesting deeper than this is refused (a corrupt value, not a geometry).
const MAX_DEPTH: usize = 64;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

#[derive(Clone, Copy)]
struct Header {
    kind: u32,
    has_z: bool,
    has_m: bool,
}

impl Header {
    fn dims(self) -> usize {
        2 + usize::from(self.has_z) + usize::from(self.has_m)
    }

    fn tag(self) -> &'static str {
        match (self.has_z, self.has_m) {
            (true, true) => " ZM",
            (true, false) => " Z",
            (false, true) => " M",
            (false, false) => "",
        }
    }
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let end = self.pos + N;
        let chunk = self
            .bytes
            .get(self.pos..end)
            .ok_or_else(|| format!("WKB value ends after {} bytes", self.bytes.len()))?;
        self.pos = end;
        let mut out = [0u8; N];
        out.copy_from_slice(chunk);
        Ok(out)
    }

    fn u32(&mut self, little: bool) -> Result<u32, String> {
        let b = self.take::<4>()?;
        Ok(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    fn f64(&mut self, little: bool) -> Result<f64, String> {
        let b = self.take::<8>()?;
        Ok(if little {
            f64::from_le_bytes(b)
        } else {
            f64::from_be_bytes(b)
        })
    }

    fn header(&mut self) -> Result<(bool, Header), String> {
        let [order] = self.take::<1>()?;
        let little = match order {
            0 => false,
            1 => true,
            other => return Err(format!("bad WKB byte order {other}")),
        };
        let raw = self.u32(little)?;
        // EWKB flags, then ISO's thousands.
        let mut has_z = raw & 0x8000_0000 != 0;
        let mut has_m = raw & 0x4000_0000 != 0;
        let code = raw & 0x0fff_ffff;
        let (kind, iso) = (code % 1000, code / 1000);
        match iso {
            0 => {}
            1 => has_z = true,
            2 => has_m = true,
            3 => (has_z, has_m) = (true, true),
            _ => return Err(format!("unknown WKB geometry type {raw}")),
        }
        Ok((little, Header { kind, has_z, has_m }))
    }

    fn count(&mut self, little: bool) -> Result<usize, String> {
        let n = self.u32(little)? as usize;
        // Every element takes at least 8 bytes; a larger count is a corrupt value.
        if n > self.bytes.len().saturating_sub(self.pos) / 8 + 1 {
            return Err(format!("WKB count {n} exceeds the value's size"));
        }
        Ok(n)
    }

    fn coords(&mut self, out: &mut String, little: bool, h: Header) -> Result<bool, String> {
        let mut values = Vec::with_capacity(h.dims());
        for _ in 0..h.dims() {
            values.push(self.f64(little)?);
        }
        if values.iter().all(|v| v.is_nan()) {
            return Ok(false);
        }
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            push_coordinate(out, v);
        }
        Ok(true)
    }

    /// A WKB count, then that many items, as `(a, b, ...)` or `EMPTY`.
    fn list(
        &mut self,
        out: &mut String,
        little: bool,
        mut item: impl FnMut(&mut Self, &mut String) -> Result<(), String>,
    ) -> Result<(), String> {
        let n = self.count(little)?;
        if n == 0 {
            out.push_str("EMPTY");
            return Ok(());
        }
        out.push('(');
        for i in 0..n {
            if i > 0 {
                out.push_str(", ");
            }
            item(self, out)?;
        }
        out.push(')');
        Ok(())
    }

    fn points(&mut self, out: &mut String, little: bool, h: Header) -> Result<(), String> {
        self.list(out, little, |r, o| r.coords(o, little, h).map(|_| ()))
    }

    fn rings(&mut self, out: &mut String, little: bool, h: Header) -> Result<(), String> {
        self.list(out, little, |r, o| r.points(o, little, h))
    }

    /// A geometry with its type name (`top`) or, inside a multi-geometry, without.
    fn geometry(&mut self, out: &mut String, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("WKB geometry nested too deeply".into());
        }
        let (little, h) = self.header()?;
        let name = match h.kind {
            1 => "POINT",
            2 => "LINESTRING",
            3 => "POLYGON",
            4 => "MULTIPOINT",
            5 => "MULTILINESTRING",
            6 => "MULTIPOLYGON",
            7 => "GEOMETRYCOLLECTION",
            other => return Err(format!("unsupported WKB geometry type {other}")),
        };
        let _ = write!(out, "{name}{} ", h.tag());
        self.body(out, little, h, depth)
    }

    fn body(
        &mut self,
        out: &mut String,
        little: bool,
        h: Header,
        depth: usize,
    ) -> Result<(), String> {
        match h.kind {
            1 => {
                let mut text = String::new();
                if self.coords(&mut text, little, h)? {
                    out.push('(');
                    out.push_str(&text);
                    out.push(')');
                } else {
                    out.push_str("EMPTY");
                }
            }
            2 => self.points(out, little, h)?,
            3 => self.rings(out, little, h)?,
            4..=6 => self.list(out, little, |r, o| {
                let (part_little, part) = r.header()?;
                if part.kind != h.kind - 3 {
                    return Err(format!(
                        "WKB multi-geometry of type {} holds a part of type {}",
                        h.kind, part.kind
                    ));
                }
                if part.kind == 1 {
                    // DuckDB prints MULTIPOINT (1 2, 3 4) and MULTIPOINT (EMPTY, 1 2).
                    let mut text = String::new();
                    if r.coords(&mut text, part_little, part)? {
                        o.push_str(&text);
                    } else {
                        o.push_str("EMPTY");
                    }
                    Ok(())
                } else {
                    r.body(o, part_little, part, depth + 1)
                }
            })?,
            _ => self.list(out, little, |r, o| r.geometry(o, depth + 1))?,
        }
        Ok(())
    }
}

/// A coordinate as DuckDB prints it: a DOUBLE without the `.0` of whole numbers.
fn push_coordinate(out: &mut String, v: f64) {
    let start = out.len();
    push_float(out, v);
    if out.ends_with(".0") && out.get(start..).is_some_and(|s| !s.contains('e')) {
        out.truncate(out.len() - 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn point(x: f64, y: f64) -> Vec<u8> {
        let mut v = vec![1, 1, 0, 0, 0];
        v.extend(x.to_le_bytes());
        v.extend(y.to_le_bytes());
        v
    }

    #[test]
    fn points_as_duckdb_prints_them() {
        // Bytes from DuckDB 1.5.5: COPY (SELECT 'POINT ZM (1 2 3 4)'::GEOMETRY) TO ... .
        let zm = hex("01B90B0000000000000000F03F000000000000004000000000000008400000000000001040");
        assert_eq!(wkb_to_wkt(&zm).unwrap(), "POINT ZM (1 2 3 4)");
        assert_eq!(wkb_to_wkt(&point(1.0, 2.0)).unwrap(), "POINT (1 2)");
        assert_eq!(wkb_to_wkt(&point(1.5, -0.1)).unwrap(), "POINT (1.5 -0.1)");
        assert_eq!(
            wkb_to_wkt(&point(1e16, 1e-5)).unwrap(),
            "POINT (1e+16 1e-05)"
        );
        assert_eq!(
            wkb_to_wkt(&point(1e15, 0.0)).unwrap(),
            "POINT (1000000000000000 0)"
        );
        assert_eq!(
            wkb_to_wkt(&point(f64::NAN, f64::NAN)).unwrap(),
            "POINT EMPTY"
        );
    }

    #[test]
    fn collections_and_big_endian() {
        // MULTIPOINT (1 2, EMPTY) little endian.
        let mut mp = vec![1, 4, 0, 0, 0, 2, 0, 0, 0];
        mp.extend(point(1.0, 2.0));
        mp.extend(point(f64::NAN, f64::NAN));
        assert_eq!(wkb_to_wkt(&mp).unwrap(), "MULTIPOINT (1 2, EMPTY)");
        // LINESTRING (0 0, 1 1) big endian.
        let mut ls = vec![0, 0, 0, 0, 2, 0, 0, 0, 2];
        for v in [0.0f64, 0.0, 1.0, 1.0] {
            ls.extend(v.to_be_bytes());
        }
        assert_eq!(wkb_to_wkt(&ls).unwrap(), "LINESTRING (0 0, 1 1)");
        let mut gc = vec![1, 7, 0, 0, 0, 2, 0, 0, 0];
        gc.extend(point(1.0, 2.0));
        gc.extend(ls);
        assert_eq!(
            wkb_to_wkt(&gc).unwrap(),
            "GEOMETRYCOLLECTION (POINT (1 2), LINESTRING (0 0, 1 1))"
        );
        assert_eq!(
            wkb_to_wkt(&[1, 3, 0, 0, 0, 0, 0, 0, 0]).unwrap(),
            "POLYGON EMPTY"
        );
    }

    #[test]
    fn corrupt_values_are_errors_not_panics() {
        assert!(wkb_to_wkt(&[]).is_err());
        assert!(wkb_to_wkt(&[7]).is_err());
        assert!(wkb_to_wkt(&[1, 2, 0, 0, 0, 255, 255, 255, 255]).is_err());
        assert!(wkb_to_wkt(&[1, 99, 0, 0, 0]).is_err());
        let mut long = point(1.0, 2.0);
        long.push(0);
        assert!(wkb_to_wkt(&long).is_err());
        // Deep nesting of collections.
        let deep: Vec<u8> = (0..100)
            .flat_map(|_| [1u8, 7, 0, 0, 0, 1, 0, 0, 0])
            .collect();
        assert!(wkb_to_wkt(&deep).is_err());
    }
}
