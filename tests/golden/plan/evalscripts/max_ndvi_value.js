//VERSION=3
// Highest NDVI over the time range as a single FLOAT32 band, so a collection built from the
// results holds the values themselves (collections take single-band TIFFs).
function setup() {
  return {
    input: [{ bands: ["B04", "B08"] }],
    output: [{ id: "ndvi", bands: 1, sampleType: "FLOAT32", nodataValue: -2 }],
    mosaicking: Mosaicking.ORBIT,
  };
}

function evaluatePixel(samples) {
  let best = -2;
  for (const s of samples) {
    const sum = s.B08 + s.B04;
    if (sum !== 0) {
      best = Math.max(best, (s.B08 - s.B04) / sum);
    }
  }
  return [best];
}
