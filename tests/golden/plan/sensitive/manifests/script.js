//VERSION=3
function setup() { return {input: ["B04"], output: {bands: 1}}; }
function evaluatePixel(s) { return [s.B04]; }
