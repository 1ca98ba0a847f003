export * from './curation';
export * from './images';
