//VERSION=3
// Highest NDVI over the time range, with the B04 and B08 values of the observation that gave it.
function setup() {
  return {
    input: [{ bands: ["B04", "B08"] }],
    output: [
      { id: "maxNDVI", bands: 1, sampleType: "FLOAT32" },
      { id: "band04", bands: 1, sampleType: "UINT16" },
      { id: "band08", bands: 1, sampleType: "UINT16" },
    ],
    mosaicking: Mosaicking.ORBIT,
  };
}

function ndvi(s) {
  const sum = s.B08 + s.B04;
  return sum === 0 ? 0 : (s.B08 - s.B04) / sum;
}

function evaluatePixel(samples) {
  let best = { value: 0, B04: 0, B08: 0 };
  for (const s of samples) {
    const value = ndvi(s);
    if (value > best.value) {
      best = { value: value, B04: s.B04, B08: s.B08 };
    }
  }
  return { maxNDVI: [best.value], band04: [best.B04], band08: [best.B08] };
}
