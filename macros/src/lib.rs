//! `#[resource]`: one declaration per GraphQL resource, from which come
//! its object type, its filter input, its order enum, the columns each
//! field reads, and the in-memory matcher for live events.
//!
//! ```ignore
//! #[resource(entity = activity, filter = ActivityFilter, order = ActivityOrderField,
//!            filter_doc = "Which activities to include.",
//!            order_doc = "Fields activities can be sorted by.", complex)]
//! /// One thing the platform did for a lead.
//! pub struct Activity {
//!     /// The platform's `activityId`.
//!     #[field(key, filter, sort)]
//!     id: ID,
//!     /// The analysis disposition of this call.
//!     #[field(column = analysis_disposition, filter_ci)]
//!     disposition: Option<String>,
//!     /// Activities whose analysis summary or transcript contains this text.
//!     #[filter_only(with = search::activities)]
//!     search: String,
//! }
//! ```
//!
//! A field's type is its GraphQL type; `engine::resource::Kind` says how
//! it is stored. Field flags: `key` (always read: other fields and
//! cursors need it), `hidden` (read but not in the schema), `filter` /
//! `filter_ci` (a filter input field; `_ci` compares ignoring case),
//! `sort` (an order enum value), `personal` (personal data: keys whose
//! role may not read it get null and a `FORBIDDEN` error, and are refused
//! filters and sorts on it; the field must be an `Option`), `column = name`
//! (the model field, when it differs), `name = "…"` (the GraphQL name,
//! when it differs). `#[filter_only(with = f)]` declares a filter input
//! field of its own type with `f(&value, at: Against) -> Condition` (`at`:
//! the backend and the request's moment), evaluated
//! by the database only; `#[filter_only(with = f, personal)]` one over
//! personal data; `#[filter_only(with = f, level)]` calls
//! `f(&value, &filter, at)` with the filter level the field is in, so the
//! condition may use its siblings.
//!
//! The generated code names `crate::graphql::engine` and the `entity`
//! crate: it is for leadql alone.

mod filter;

use filter::filter_input;
use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{parse_macro_input, Attribute, Ident, ItemStruct, LitStr, Path, Type};

#[proc_macro_attribute]
pub fn resource(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut resource = Args::default();
    let parser = syn::meta::parser(|meta| resource.parse(meta));
    parse_macro_input!(args with parser);
    let item = parse_macro_input!(item as ItemStruct);
    match expand(resource, item) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

#[derive(Default)]
pub(crate) struct Args {
    entity: Option<Ident>,
    filter: Option<Ident>,
    pub(crate) filter_doc: Option<LitStr>,
    order: Option<Ident>,
    order_doc: Option<LitStr>,
    complex: bool,
    joins: Option<Path>,
}

impl Args {
    fn parse(&mut self, meta: syn::meta::ParseNestedMeta) -> syn::Result<()> {
        if meta.path.is_ident("entity") {
            self.entity = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("filter") {
            self.filter = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("filter_doc") {
            self.filter_doc = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("order") {
            self.order = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("order_doc") {
            self.order_doc = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("complex") {
            self.complex = true;
        } else if meta.path.is_ident("joins") {
            self.joins = Some(meta.value()?.parse()?);
        } else {
            return Err(
                meta.error("expected entity, filter, filter_doc, order, order_doc or complex")
            );
        }
        Ok(())
    }
}

/// One column-backed field of the object.
pub(crate) struct Field {
    ident: Ident,
    ty: Type,
    docs: Vec<Attribute>,
    column: Ident,
    name: String,
    key: bool,
    hidden: bool,
    /// Some(fold_case) when the field filters.
    filter: Option<bool>,
    sort: bool,
    /// Personal data: refused to keys whose role may not read it.
    personal: bool,
}

/// A filter input field the database alone decides.
pub(crate) struct FilterOnly {
    ident: Ident,
    ty: Type,
    docs: Vec<Attribute>,
    with: Path,
    /// `with` is also given the filter's level (its sibling conditions).
    level: bool,
    personal: bool,
}

pub(crate) enum Entry {
    Field(Field),
    FilterOnly(FilterOnly),
}

/// `snake_case` (raw identifiers too) as `camelCase` or `UpperCamelCase`.
fn camel(ident: &Ident, upper_first: bool) -> String {
    let text = ident.to_string();
    let text = text.trim_start_matches("r#");
    let mut out = String::new();
    let mut upper = upper_first;
    for ch in text.chars() {
        if ch == '_' {
            upper = true;
        } else if upper {
            out.extend(ch.to_uppercase());
            upper = false;
        } else {
            out.push(ch);
        }
    }
    out
}

/// `Option<…>` or `Nullable<…>` (a NOT NULL column as a nullable field),
/// written so.
fn is_option(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Option" || s.ident == "Nullable"))
}

fn entries(item: &ItemStruct) -> syn::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for f in &item.fields {
        let ident = f
            .ident
            .clone()
            .ok_or_else(|| syn::Error::new(f.span(), "fields need names"))?;
        let docs: Vec<Attribute> = f
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("doc"))
            .cloned()
            .collect();
        if let Some(attr) = f.attrs.iter().find(|a| a.path().is_ident("filter_only")) {
            let mut with = None;
            let mut personal = false;
            let mut level = false;
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("with") {
                    with = Some(meta.value()?.parse::<Path>()?);
                    Ok(())
                } else if meta.path.is_ident("personal") {
                    personal = true;
                    Ok(())
                } else if meta.path.is_ident("level") {
                    level = true;
                    Ok(())
                } else {
                    Err(meta.error("expected `with = function`, `level` or `personal`"))
                }
            })?;
            let with =
                with.ok_or_else(|| syn::Error::new(attr.span(), "filter_only needs `with`"))?;
            out.push(Entry::FilterOnly(FilterOnly {
                ident,
                ty: f.ty.clone(),
                docs,
                with,
                level,
                personal,
            }));
            continue;
        }
        let mut field = Field {
            name: camel(&ident, false),
            column: ident.clone(),
            ident,
            ty: f.ty.clone(),
            docs,
            key: false,
            hidden: false,
            filter: None,
            sort: false,
            personal: false,
        };
        for attr in f.attrs.iter().filter(|a| a.path().is_ident("field")) {
            attr.parse_nested_meta(|meta| {
                let p = &meta.path;
                if p.is_ident("key") {
                    field.key = true;
                } else if p.is_ident("hidden") {
                    field.hidden = true;
                } else if p.is_ident("filter") {
                    field.filter = Some(false);
                } else if p.is_ident("filter_ci") {
                    field.filter = Some(true);
                } else if p.is_ident("sort") {
                    field.sort = true;
                } else if p.is_ident("personal") {
                    field.personal = true;
                } else if p.is_ident("column") {
                    field.column = meta.value()?.parse()?;
                } else if p.is_ident("name") {
                    field.name = meta.value()?.parse::<LitStr>()?.value();
                } else {
                    return Err(meta.error(
                        "expected key, hidden, filter, filter_ci, sort, personal, column = … or name = \"…\"",
                    ));
                }
                Ok(())
            })?;
        }
        if field.personal && !is_option(&field.ty) {
            return Err(syn::Error::new(
                field.ty.span(),
                "a personal field answers null to keys that may not read it: declare it as an Option (or Nullable<…> for a NOT NULL column)",
            ));
        }
        out.push(Entry::Field(field));
    }
    Ok(out)
}

fn expand(args: Args, item: ItemStruct) -> syn::Result<Tokens> {
    let entity = args
        .entity
        .clone()
        .ok_or_else(|| syn::Error::new(Span::call_site(), "#[resource] needs `entity = module`"))?;
    let entries = entries(&item)?;
    let fields: Vec<&Field> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Field(f) => Some(f),
            Entry::FilterOnly(_) => None,
        })
        .collect();
    let r = quote!(crate::graphql::engine::resource);
    let model = quote!(::entity::#entity);
    let name = &item.ident;
    let vis = &item.vis;
    let struct_attrs: Vec<&Attribute> = item.attrs.iter().collect();
    let column = |f: &Field| {
        let variant = format_ident!("{}", camel(&f.column, true));
        quote!(#model::Column::#variant)
    };

    // The object type.
    let object_fields = fields.iter().map(|f| {
        let (ident, ty, docs) = (&f.ident, &f.ty, &f.docs);
        let gql = &f.name;
        let attr = if f.hidden {
            quote!(#[graphql(skip)])
        } else if f.personal {
            quote! {
                #[doc = ""]
                #[doc = "Personal data: null, with a `FORBIDDEN` error, for analyst keys."]
                #[graphql(name = #gql)]
            }
        } else {
            quote!(#[graphql(name = #gql)])
        };
        let personal = f.personal;
        quote! { #(#docs)* #attr pub #ident: #r::Col<<#ty as #r::Kind>::Gql, #personal>, }
    });
    let complex = args.complex.then(|| quote!(#[graphql(complex)]));
    let keys = fields.iter().filter(|f| f.key).map(|f| column(f));
    let selectable = fields.iter().filter(|f| !f.hidden).map(|f| {
        let (gql, col) = (&f.name, column(f));
        quote! { #gql => #r::ColumnSet::EMPTY.with(#col as u32), }
    });
    let reads = fields.iter().map(|f| {
        let (ident, ty, col) = (&f.ident, &f.ty, column(f));
        quote! { #ident: #r::Col::read::<#ty>(row, cols, #col as u32, ::sea_orm::IdenStatic::as_str(&#col), prefix)?, }
    });
    let converts = fields.iter().map(|f| {
        let (ident, ty, col) = (&f.ident, &f.ty, &f.column);
        quote! { #ident: #r::Col::new(<#ty as #r::Kind>::gql(m.#col)), }
    });
    let columns_list = fields.iter().map(|f| {
        let (gql, col) = (&f.name, column(f));
        quote! { (#gql, #col) }
    });
    let joins_fn = args.joins.as_ref().map(|path| {
        quote! {
            fn joins() -> ::std::vec::Vec<crate::graphql::engine::join::Join<#model::Entity>> {
                #path()
            }
        }
    });
    let mut out = quote! {
        #(#struct_attrs)*
        #[derive(::async_graphql::SimpleObject, ::core::clone::Clone, ::core::fmt::Debug)]
        #complex
        #vis struct #name {
            #(#object_fields)*
            /// Relations read with this row (see `engine::join`).
            #[graphql(skip)]
            pub joined: #r::Joined,
        }

        impl #r::Resource for #name {
            type Entity = #model::Entity;

            fn key_columns() -> #r::ColumnSet {
                #r::ColumnSet::EMPTY #( .with(#keys as u32) )*
            }

            fn columns_of(field: &str) -> #r::ColumnSet {
                match field {
                    #(#selectable)*
                    _ => #r::ColumnSet::EMPTY,
                }
            }

            fn from_row_as(
                row: &::sea_orm::QueryResult,
                cols: #r::ColumnSet,
                prefix: &str,
            ) -> ::core::result::Result<Self, ::sea_orm::DbErr> {
                ::core::result::Result::Ok(#name { #(#reads)* joined: ::core::default::Default::default() })
            }

            fn joined_mut(&mut self) -> &mut #r::Joined {
                &mut self.joined
            }

            #joins_fn

            fn declared() -> ::std::vec::Vec<(&'static str, #model::Column)> {
                ::std::vec![#(#columns_list),*]
            }
        }

        impl ::core::convert::From<#model::Model> for #name {
            fn from(m: #model::Model) -> Self {
                #name { #(#converts)* joined: ::core::default::Default::default() }
            }
        }
    };

    if let Some(filter) = &args.filter {
        out.extend(filter_input(&args, filter, &entries, &r, &model, &column));
    }
    if let Some(order) = &args.order {
        let doc = args.order_doc.iter();
        let sortable: Vec<&&Field> = fields.iter().filter(|f| f.sort).collect();
        let variants = sortable.iter().map(|f| {
            let docs = &f.docs;
            let v = format_ident!("{}", camel(&f.ident, true));
            quote! { #(#docs)* #v, }
        });
        let parts = sortable.iter().map(|f| {
            let v = format_ident!("{}", camel(&f.ident, true));
            let (ty, gql, col) = (&f.ty, &f.name, column(f));
            let personal = f.personal.then(|| quote!(.personal()));
            quote! { #order::#v => crate::graphql::engine::page::KeyPart::of::<#ty>(#gql, #col, desc) #personal, }
        });
        out.extend(quote! {
            #( #[doc = #doc] )*
            #[derive(::async_graphql::Enum, ::core::marker::Copy, ::core::clone::Clone, ::core::fmt::Debug, ::core::cmp::PartialEq, ::core::cmp::Eq, ::core::hash::Hash)]
            pub enum #order {
                #(#variants)*
            }

            impl #order {
                /// This field as a part of a sort key.
                pub fn part(self, desc: bool) -> crate::graphql::engine::page::KeyPart<#model::Entity> {
                    match self {
                        #(#parts)*
                    }
                }
            }
        });
    }
    Ok(out)
}
