// The `yaml` package (a quarter of the bundle) is loaded only when a YAML file is read: a datastore
// of JSON files never pays for it. The async paths that meet YAML call loadYaml(); the synchronous
// code that works on an already parsed YAML document uses yamlPackage().
export type YamlModule = typeof import('yaml');

let loaded: YamlModule | undefined;

/** The yaml package, imported once. */
export async function loadYaml(): Promise<YamlModule> {
  if (loaded === undefined) {
    const module = await import('yaml');
    // The package is CommonJS: Node gives its exports both as names and as `default`; the bundle
    // (esbuild puts it in a chunk of its own) gives them only as `default`.
    loaded = (module as { default?: YamlModule }).default ?? module;
  }
  return loaded;
}

/** The yaml package after loadYaml(): any YAML document sc holds was parsed after it was loaded. */
export function yamlPackage(): YamlModule {
  if (loaded === undefined) throw new Error('internal error: the yaml package is used before loadYaml()');
  return loaded;
}
