// A static export (out/), served beside the demo bundle by the test.
export default { output: "export", trailingSlash: true };
