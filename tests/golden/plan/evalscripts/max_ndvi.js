//VERSION=3
// Highest NDVI seen over the time range, coloured with a green ramp (3-band visual output).
function setup() {
  return {
    input: [{ bands: ["B04", "B08"] }],
    output: [{ id: "default", bands: 3 }],
    mosaicking: Mosaicking.ORBIT,
  };
}

const ramp = new ColorRampVisualizer([
  [-0.2, 0xbfbfbf],
  [0.0, 0xebebeb],
  [0.1, 0xc8c682],
  [0.2, 0x91bf52],
  [0.4, 0x4f8a2e],
  [0.6, 0x0f540c],
]);

function ndvi(s) {
  const sum = s.B08 + s.B04;
  return sum === 0 ? 0 : (s.B08 - s.B04) / sum;
}

function evaluatePixel(samples) {
  let best = 0;
  for (const s of samples) {
    best = Math.max(best, ndvi(s));
  }
  return ramp.process(best);
}
