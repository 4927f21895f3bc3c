// The TypeScript compiler options the package tests check declarations and
// documentation examples with: those of a strict consumer on Node 20.
import ts from 'typescript';

/** Strict NodeNext options with Node's types, emitting nothing. */
export function strictCompilerOptions(): ts.CompilerOptions {
  return {
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2022.d.ts'],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    skipLibCheck: true,
    types: ['node'],
    noEmit: true,
  };
}
