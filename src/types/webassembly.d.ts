// The part of the WebAssembly JavaScript API livemig uses. Node has the whole API at run time,
// but its typings for Node 20 leave it to the DOM library, which this project does not load.

declare namespace WebAssembly {
  interface MemoryDescriptor {
    initial: number;
    maximum?: number;
    shared?: boolean;
  }
  class Memory {
    constructor(descriptor: MemoryDescriptor);
    readonly buffer: ArrayBuffer | SharedArrayBuffer;
    grow(delta: number): number;
  }
  class Module {
    constructor(bytes: Uint8Array);
  }
  type Imports = Record<string, Record<string, unknown>>;
  /** From bytes: the module and its instance; from a compiled module: the instance alone. */
  function instantiate(
    source: Uint8Array | ArrayBuffer | Module,
    imports?: Imports,
  ): Promise<{ module: Module; instance: Instance } | Instance>;
  class Instance {
    constructor(module: Module, imports?: Record<string, Record<string, unknown>>);
    readonly exports: Record<string, unknown>;
  }
}
