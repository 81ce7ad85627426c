/** `bottleneck/light.js` (the build @octokit/plugin-throttling uses) has the package's types. */
declare module 'bottleneck/light.js' {
  import Bottleneck from 'bottleneck';
  export default Bottleneck;
}
